//! `closedcircuit serve`: runs a server node.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Where the server keeps its metadata database and encrypted blobs
    #[arg(
        long,
        env = "CLOSEDCIRCUIT_DATA_DIR",
        default_value = "closedcircuit-data"
    )]
    pub data_dir: PathBuf,
    /// Address and port to listen on
    #[arg(long, env = "CLOSEDCIRCUIT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    cc_server::serve(cc_server::Config {
        data_dir: args.data_dir,
        listen: args.listen,
        ..cc_server::Config::default()
    })
    .await
    .map_err(Into::into)
}
