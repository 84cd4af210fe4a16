//! The latency model against independent public measurements (`data/public_latency/`): the
//! compiled-in figures are the fit of that data, and devices left out of the fit are predicted
//! within the stated error.

use device_profiles::latency::{CORE_MODELS, PARALLEL_BRIDGE, core_model};

use crate::public_fit::{
    Placement, fit, host_ms, leave_one_device_out, ncnn_rows, ncnn_uses_fp16, paddle_check,
    paddle_rows, paddle_threads_check, placement_check, summary, without_device_factor,
};

#[test]
fn compiled_core_models_are_the_fit_of_the_public_data() {
    let f = fit(&ncnn_rows(), &paddle_rows(), &host_ms(), None);
    assert!(f.speed_per_ghz.len() >= 8, "{f:?}");
    for (core, (k, n, _)) in &f.speed_per_ghz {
        let m = core_model(core).unwrap_or_else(|| panic!("{core} has no CoreModel"));
        assert!(
            (m.speed_per_ghz - k).abs() <= 0.01 * k,
            "{core}: compiled {} but the data fit {k:.4} on {n} devices; rerun the \
             fit_latency_model example and update CORE_MODELS",
            m.speed_per_ghz
        );
        assert!(
            m.basis.starts_with("fit"),
            "{core} is fitted, its basis must say so"
        );
    }
    for m in CORE_MODELS.iter().filter(|m| m.basis.starts_with("fit")) {
        assert!(
            f.speed_per_ghz.contains_key(m.core),
            "{} claims `fit` but no public measurement of it is in the data",
            m.core
        );
    }
    assert!(
        (f.parallel_bridge - PARALLEL_BRIDGE).abs() < 0.005,
        "compiled PARALLEL_BRIDGE {PARALLEL_BRIDGE} but the data fit {:.4}; update it",
        f.parallel_bridge
    );
}

#[test]
fn held_out_devices_are_predicted_within_the_stated_error() {
    let (ncnn, paddle, host) = (ncnn_rows(), paddle_rows(), host_ms());
    let checks = leave_one_device_out(&ncnn, &paddle, &host);
    let paddle_checks = paddle_check(&ncnn, &paddle, &host);
    // fp32 at one thread (what the engine runs): ncnn's ARMv8.0 rows and Paddle-Lite's rows.
    let one: Vec<_> = checks
        .iter()
        .filter(|c| c.row.threads == 1 && !ncnn_uses_fp16(c.row.core))
        .chain(paddle_checks.iter())
        .collect();
    let (share, median, n) = summary(&one);
    assert!(n >= 100, "only {n} one-thread fp32 measurements");
    assert!(
        share >= 0.88 && median <= 0.12,
        "1 thread fp32: {share:.3} within ±25%, median {median:.3} (BENCHMARKS.md: 91%, 10.4%)"
    );
    let a53: Vec<_> = one
        .iter()
        .copied()
        .filter(|c| c.row.core == "cortex-a53")
        .collect();
    let (share, median, n) = summary(&a53);
    assert!(
        n >= 40 && share >= 0.8 && median <= 0.13,
        "A53: {n} rows, {share:.3}, {median:.3}"
    );
    // Multi-thread (Amdahl with the host's parallel fraction × the bridge): 74% within ±25%,
    // median 13.9% (BENCHMARKS.md). The model it replaced (a fixed efficiency per added thread
    // and core class) gave 56% and 22.1% on the same rows and fails both bounds. The goal (90%,
    // 12%) is not met and no model of core type, clock, threads and the net's host parallel
    // fraction met it here (per-class or per-core bridges, an affine map of the parallel
    // fraction, cores^alpha, an overhead per thread: 69-75%, median 13.7-16.4%; one fraction
    // for every net: 60%, 22%); the spread is between devices.
    let multi: Vec<_> = checks
        .iter()
        .filter(|c| (2..=4).contains(&c.row.threads) && !ncnn_uses_fp16(c.row.core))
        .collect();
    let (share, median, n) = summary(&multi);
    assert!(n >= 150, "only {n} multi-thread measurements");
    assert!(
        share >= 0.72 && median <= 0.15,
        "2-4 threads: {share:.3} within ±25%, median {median:.3} (BENCHMARKS.md: 74%, 13.9%)"
    );
    // What is left once each device's own median error is taken out: the nets' spread on one
    // device (95%, 7.2%). Most of the multi-thread error is one factor per device.
    let (share, median, _) = summary(&without_device_factor(&multi).iter().collect::<Vec<_>>());
    assert!(
        share >= 0.92 && median <= 0.09,
        "2-4 threads without each device's factor: {share:.3}, {median:.3} (95%, 7.2%)"
    );
}

#[test]
fn paddle_lite_thread_runs_on_phones_are_predicted_within_the_stated_error() {
    // A second framework's 2- and 4-thread runs (fp32, not bound) on three phones, each predicted
    // by a fit without it, through the bridge of ncnn's: 83% within ±25%, median 11.3%.
    let (ncnn, paddle, host) = (ncnn_rows(), paddle_rows(), host_ms());
    let checks = paddle_threads_check(&ncnn, &paddle, &host);
    let (share, median, n) = summary(&checks.iter().collect::<Vec<_>>());
    assert!(n >= 20, "only {n} Paddle-Lite multi-thread runs");
    assert!(
        share >= 0.80 && median <= 0.13,
        "Paddle-Lite 2/4 threads: {share:.3} within ±25%, median {median:.3} (83%, 11.3%)"
    );
}

#[test]
fn threads_over_big_and_little_cores_wait_for_the_little_ones() {
    // ncnn's runs on every core of six big.LITTLE SoCs, predicted from their big-cluster runs:
    // equal parts on the slowest core reached (72%, 19.7%) against summed core speeds (31%,
    // 39.1%: on RK3588 and Snapdragon 8 Gen 2 all cores are ~2× slower than the big cluster).
    let (ncnn, paddle, host) = (ncnn_rows(), paddle_rows(), host_ms());
    let equal = placement_check(&ncnn, &paddle, &host, Placement::EqualSplit);
    let sum = placement_check(&ncnn, &paddle, &host, Placement::Sum);
    let (share, median, n) = summary(&equal.iter().collect::<Vec<_>>());
    let (sum_share, sum_median, _) = summary(&sum.iter().collect::<Vec<_>>());
    assert!(n >= 45, "only {n} all-core runs with a big-cluster run");
    assert!(
        share >= 0.65 && median <= 0.22,
        "equal parts: {share:.3} within ±25%, median {median:.3} (72%, 19.7%)"
    );
    assert!(
        sum_share + 0.2 < share && sum_median > median + 0.1,
        "summed speeds ({sum_share:.3}, {sum_median:.3}) should be far worse than equal parts"
    );
}

#[test]
fn catalog_phones_agree_with_public_devices_of_the_same_core_and_clock() {
    // A catalog phone's score says how fast one core runs a net; a public device with the same
    // core type at (nearly) the same clock measured it. The catalog is not fitted on these rows
    // more than on any other: this checks the phones' scores, not the formula.
    let host = host_ms();
    let rows: Vec<_> = ncnn_rows()
        .into_iter()
        .filter(|r| r.threads == 1 && !ncnn_uses_fp16(r.core))
        .chain(paddle_rows().into_iter().filter(|r| r.threads == 1))
        .collect();
    let f = fit(&ncnn_rows(), &paddle_rows(), &host, None);
    let mut compared = 0;
    for phone in device_profiles::catalog::builtin().unwrap() {
        let speed = device_profiles::latency::speed_of_score(phone.score);
        let Some(fast) = phone.cpu.clusters.iter().max_by(|a, b| {
            let s = |c: &device_profiles::CpuCluster| {
                device_profiles::latency::core_speed(&c.core, c.max_mhz.unwrap_or(0)).unwrap_or(0.0)
            };
            s(a).total_cmp(&s(b))
        }) else {
            continue;
        };
        let ghz = f64::from(fast.max_mhz.unwrap_or(0)) / 1000.0;
        let same: Vec<_> = rows
            .iter()
            .filter(|r| r.core == fast.core && (r.ghz - ghz).abs() <= 0.25)
            .collect();
        if same.is_empty() {
            continue;
        }
        // measured ms at the public device's clock, moved to the phone's clock
        let errors: Vec<f64> = same
            .iter()
            .filter_map(|r| {
                let cost = if r.source == "ncnn" {
                    *host.get(&r.model)?
                } else {
                    // Paddle-Lite: the net's cost in host-core units from the fitted speeds
                    r.ms * f.speed(r)?
                };
                let predicted = cost / speed;
                let measured_at_phone_clock = r.ms * r.ghz / ghz;
                Some((predicted / measured_at_phone_clock - 1.0).abs())
            })
            .collect();
        let med = crate::public_fit::median(errors);
        assert!(
            med <= 0.25,
            "{}: median error {med:.3} against {} public rows",
            phone.id,
            same.len()
        );
        compared += 1;
    }
    assert!(
        compared >= 3,
        "only {compared} catalog phones had a public device of the same core and clock"
    );
}
