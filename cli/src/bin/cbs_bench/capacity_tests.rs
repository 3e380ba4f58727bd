use super::*;

#[test]
fn a_queue_behind_a_limit_drains_at_its_rate_and_reports_the_longest_wait() {
    let mut q = OrgQueue::default();
    q.arrive(0, 120.0);
    let mut s = 0;
    while !q.waiting.is_empty() {
        q.serve(s, 1.0);
        s += 1;
    }
    // 120 at one a second: the last waits about two minutes.
    assert!(
        (118..=121).contains(&q.longest_wait_s),
        "{}",
        q.longest_wait_s
    );
    assert_eq!(q.peak_backlog, 119.0);
}

#[test]
fn sharding_lowers_the_hottest_keys_and_the_fifo_use() {
    let design = Design::default();
    let before = simulate(design, 100, BEFORE, 2, 200.0, 10.0, 7).unwrap();
    let now = simulate(design, 100, NOW, 2, 200.0, 10.0, 7).unwrap();
    let use_of = |r: &Run, name: &str| {
        r.demands
            .iter()
            .find(|d| d.limit.contains(name))
            .unwrap()
            .use_()
    };
    assert!(use_of(&now, "deadline-index") < use_of(&before, "deadline-index") / 2.5);
    assert!(use_of(&now, "insights day") < use_of(&before, "insights day") / 3.0);
    assert!(
        use_of(&before, "per queue") > 1.0,
        "100x binds FIFO without high throughput"
    );
    assert!(use_of(&now, "per queue") < 0.1);
}
