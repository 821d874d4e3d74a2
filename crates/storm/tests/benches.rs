//! The benchmarks' mechanics at a tiny scale, so they keep working between releases.
//! Nothing here looks at how fast anything was: figures come from release runs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_bench_runs_and_reports_both_sides() -> Result<(), cc_storm::StormError> {
    let report = cc_storm::bench::ingest(6, 2).await?;
    assert_eq!(report.events, 6);
    assert!(report.events_per_second > 0.0 && report.ceiling_events_per_second > 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_bench_serves_whole_and_ranged_clips_on_both_sides(
) -> Result<(), cc_storm::StormError> {
    let report = cc_storm::download::download(2, 8, 2).await?;
    assert_eq!(report.requests, 8);
    assert!(report.project_mib_per_second > 0.0 && report.ceiling_mib_per_second > 0.0);
    Ok(())
}
