//! Fitting and validating the latency model on public measurements (`device-profiles/data/public_latency/`).
//!
//! Shared by the integration tests (`public_latency.rs`) and the example that prints the fitted
//! table (`examples/fit_latency_model.rs`). Only ncnn's table is fitted on; Paddle-Lite's is a
//! second framework, used only to validate relative speeds.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use device_profiles::cores::core_by_name;
use device_profiles::latency::{
    amdahl_speedup, effective_cores, equal_split_cores, parallel_fraction,
};
use device_profiles::{Cpu, CpuCluster};

/// MobileNet-class nets (depthwise-separable convolutions) kept from the public tables.
pub const MODELS: &[&str] = &[
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v3",
    "mnasnet",
    "proxylessnasnet",
    "efficientnet_b0",
    "shufflenet",
    "shufflenet_v2",
    "blazeface",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
];

/// The data folder.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/public_latency")
}

/// One public measurement on an ARM device, on one core type.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `ncnn` or `paddle-lite`.
    pub source: &'static str,
    /// Device as the source names it.
    pub device: String,
    /// Canonical core name (`cortex-a53`).
    pub core: &'static str,
    /// Clock of the cores that ran, GHz.
    pub ghz: f64,
    /// Cores in the cluster that ran.
    pub cluster_cores: u32,
    /// Threads.
    pub threads: u32,
    /// Net.
    pub model: String,
    /// Mean latency, ms.
    pub ms: f64,
}

#[derive(Debug, serde::Deserialize)]
struct CsvRow {
    device: String,
    core_type: String,
    mixed_core_types: String,
    core_ghz: String,
    cluster_cores: String,
    threads: String,
    model: String,
    avg_ms: String,
}

/// The canonical name of a core as the public tables write it (`A53`, `A78AE`); `None` for cores
/// outside the catalog's table (ARMv7 cores, Apple, Carmel, Phytium, Kryo 1xx, Neoverse).
pub fn map_core(name: &str) -> Option<&'static str> {
    let n = name.trim().to_ascii_lowercase();
    let n = n.strip_suffix("ae").unwrap_or(&n);
    let canonical = format!("cortex-{n}");
    core_by_name(&canonical).map(|c| c.name)
}

fn read_rows(path: &Path, source: &'static str) -> Vec<Row> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for rec in reader.deserialize::<CsvRow>() {
        let r = rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if r.mixed_core_types.trim() == "1" {
            continue;
        }
        let (Some(core), Ok(ghz), Ok(threads), Ok(ms)) = (
            map_core(&r.core_type),
            r.core_ghz.parse::<f64>(),
            r.threads.parse::<u32>(),
            r.avg_ms.parse::<f64>(),
        ) else {
            continue;
        };
        if !MODELS.contains(&r.model.as_str()) || !(ms > 0.0) || !(ghz > 0.0) {
            continue;
        }
        out.push(Row {
            source,
            device: r.device,
            core,
            ghz,
            cluster_cores: r.cluster_cores.parse().unwrap_or(1),
            threads,
            model: r.model,
            ms,
        });
    }
    out
}

/// One public run as the tables give it, on any cores (mixed clusters too), with the cores that
/// ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `ncnn` or `paddle-lite`.
    pub source: &'static str,
    /// Device as the source names it.
    pub device: String,
    /// `big`, `little`, `all`, … as the source's parser recorded it.
    pub cluster: String,
    /// The cores that ran it (`cluster_layout`), fastest first.
    pub cpu: Cpu,
    /// Threads.
    pub threads: u32,
    /// Net.
    pub model: String,
    /// Mean latency, ms.
    pub ms: f64,
}

/// A `cluster_layout` (`A76@2.84GHz x1 + A76@2.42GHz x3 + A55@1.78GHz x4`) as a [`Cpu`]; `None`
/// when a part is malformed or a core is not in the catalog's table.
pub fn parse_layout(layout: &str) -> Option<Cpu> {
    let clusters = layout
        .split(" + ")
        .map(|part| {
            let (core, rest) = part.trim().split_once('@')?;
            let (ghz, count) = rest.split_once("GHz x")?;
            Some(CpuCluster {
                core: map_core(core)?.to_string(),
                count: count.trim().parse().ok()?,
                max_mhz: Some((ghz.parse::<f64>().ok()? * 1000.0).round() as u32),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Cpu {
        clusters,
        isa: vec![],
    })
}

#[derive(Debug, serde::Deserialize)]
struct RunCsv {
    device: String,
    cluster: String,
    cluster_layout: String,
    threads: String,
    model: String,
    avg_ms: String,
}

/// Every run of `file` on cores in the catalog's table, of a net in [`MODELS`].
pub fn runs(file: &str, source: &'static str) -> Vec<Run> {
    let path = data_dir().join(file);
    let mut reader =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for rec in reader.deserialize::<RunCsv>() {
        let r = rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (Some(cpu), Ok(threads), Ok(ms)) = (
            parse_layout(&r.cluster_layout),
            r.threads.parse::<u32>(),
            r.avg_ms.parse::<f64>(),
        ) else {
            continue;
        };
        if MODELS.contains(&r.model.as_str()) && ms > 0.0 {
            out.push(Run {
                source,
                device: r.device,
                cluster: r.cluster,
                cpu,
                threads,
                model: r.model,
                ms,
            });
        }
    }
    out
}

/// ncnn's per-device table.
pub fn ncnn_rows() -> Vec<Row> {
    read_rows(&data_dir().join("ncnn_arm.csv"), "ncnn")
}

/// Paddle-Lite's per-device table.
pub fn paddle_rows() -> Vec<Row> {
    read_rows(&data_dir().join("paddlelite_arm.csv"), "paddle-lite")
}

#[derive(Debug, serde::Deserialize)]
struct HostRow {
    threads: String,
    model: String,
    min_ms: String,
    avg_ms: String,
    notes: String,
}

fn host_rows() -> Vec<HostRow> {
    let path = data_dir().join("ncnn_host.csv");
    let mut reader =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .deserialize::<HostRow>()
        .map(|rec| rec.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// ncnn on the calibration host: model → its parallel fraction
/// ([`device_profiles::latency::parallel_fraction`]) from the fastest run at 1 and at 2 threads
/// (`min_ms` over every run: the host was shared, and the fastest run is the one another job
/// disturbed least), as the bundle writer measures a variant at 1 and 2 threads.
pub fn host_parallel() -> BTreeMap<String, f64> {
    let mut fastest: BTreeMap<(String, u32), f64> = BTreeMap::new();
    for r in host_rows() {
        if let (Ok(t), Ok(ms)) = (r.threads.trim().parse::<u32>(), r.min_ms.parse::<f64>()) {
            let e = fastest.entry((r.model, t)).or_insert(f64::INFINITY);
            *e = e.min(ms);
        }
    }
    fastest
        .iter()
        .filter(|((_, t), _)| *t == 1)
        .filter_map(|((m, _), one)| {
            let two = fastest.get(&(m.clone(), 2))?;
            Some((m.clone(), parallel_fraction(*one, *two, 2)))
        })
        .collect()
}

/// ncnn on the calibration host: model → median one-thread mean latency, ms.
pub fn host_ms() -> BTreeMap<String, f64> {
    let mut runs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in host_rows() {
        if r.threads.trim() == "1"
            && !r.notes.contains("CONTENDED")
            && let Ok(ms) = r.avg_ms.parse::<f64>()
        {
            runs.entry(r.model).or_default().push(ms);
        }
    }
    runs.into_iter().map(|(m, v)| (m, median(v))).collect()
}

/// Median (mean of the two middle values for an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Whether ncnn runs this core in fp16 arithmetic (ARMv8.2-A FP16: A55, A75 and later), which
/// its benchmark does by default: such rows are not fp32 measurements.
pub fn ncnn_uses_fp16(core: &str) -> bool {
    !matches!(
        core,
        "cortex-a35" | "cortex-a53" | "cortex-a57" | "cortex-a72" | "cortex-a73"
    )
}

/// Where a core's fp32 speed comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// ncnn fp32 rows (ARMv8.0 cores).
    NcnnFp32,
    /// Paddle-Lite fp32 rows, chained to the ncnn-fitted ARMv8.0 cores.
    PaddleFp32,
    /// ncnn fp16 rows divided by the fitted fp16 gain.
    NcnnFp16,
}

/// A fitted model: fp32 speed per GHz per core type and the x86→ARM bridge of the parallel
/// fraction.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// core → (fp32 speed per GHz relative to one host core, devices, basis).
    pub speed_per_ghz: BTreeMap<&'static str, (f64, usize, Basis)>,
    /// ncnn's fp16 speed over fp32 on the same core (ARMv8.2 cores).
    pub fp16_gain: f64,
    /// A net's parallel fraction on ARM over the host's ([`host_parallel`]): the median over
    /// multi-thread runs on one cluster (`PARALLEL_BRIDGE` in the library).
    pub parallel_bridge: f64,
    /// The same ratio's median per core class (in-order, out-of-order), for the record.
    pub parallel_bridge_by_class: BTreeMap<&'static str, f64>,
    /// Each net's parallel fraction on the host.
    pub host_parallel: BTreeMap<String, f64>,
}

/// Per core: the median over devices of the per-device median of `speed(row)`.
fn per_core<'a>(
    rows: impl Iterator<Item = &'a Row>,
    speed: impl Fn(&Row) -> Option<f64>,
) -> BTreeMap<&'static str, (f64, usize)> {
    let mut per_device: BTreeMap<(&'static str, &str), Vec<f64>> = BTreeMap::new();
    for r in rows {
        if let Some(v) = speed(r) {
            per_device
                .entry((r.core, r.device.as_str()))
                .or_default()
                .push(v);
        }
    }
    let mut cores: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for ((core, _), v) in per_device {
        cores.entry(core).or_default().push(median(v));
    }
    cores
        .into_iter()
        .map(|(c, v)| {
            let n = v.len();
            (c, (median(v), n))
        })
        .collect()
}

/// Fits on every device but `exclude` (ncnn's and Paddle-Lite's rows):
/// 1. ARMv8.0 cores from ncnn's one-thread rows: host_ms / (ms × GHz);
/// 2. per Paddle-Lite net, its cost in host-core units from the ARMv8.0 devices of step 1, and
///    from it the fp32 speed of the other cores Paddle-Lite measured;
/// 3. the fp16 gain: ncnn's speed over Paddle-Lite's fp32 speed on the cores both measured;
///    ARMv8.2 cores only ncnn measured get ncnn's speed / that gain.
pub fn fit(
    rows: &[Row],
    paddle: &[Row],
    host: &BTreeMap<String, f64>,
    exclude: Option<&str>,
) -> Fit {
    let keep = |r: &&Row| Some(r.device.as_str()) != exclude;
    let ncnn_speed = |r: &Row| host.get(&r.model).map(|h| h / (r.ms * r.ghz));
    let ncnn1 = per_core(
        rows.iter().filter(keep).filter(|r| r.threads == 1),
        ncnn_speed,
    );
    let mut speed: BTreeMap<&'static str, (f64, usize, Basis)> = ncnn1
        .iter()
        .filter(|(c, _)| !ncnn_uses_fp16(c))
        .map(|(c, (k, n))| (*c, (*k, *n, Basis::NcnnFp32)))
        .collect();
    // Paddle-Lite net costs, in host-core ms, from its ARMv8.0 devices.
    let paddle1: Vec<&Row> = paddle
        .iter()
        .filter(keep)
        .filter(|r| r.threads == 1)
        .collect();
    let mut cost: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in &paddle1 {
        if let Some((k, _, Basis::NcnnFp32)) = speed.get(r.core) {
            cost.entry(r.model.as_str())
                .or_default()
                .push(r.ms * k * r.ghz);
        }
    }
    let cost: BTreeMap<&str, f64> = cost.into_iter().map(|(m, v)| (m, median(v))).collect();
    let paddle_speed = per_core(paddle1.iter().copied(), |r| {
        cost.get(r.model.as_str()).map(|c| c / (r.ms * r.ghz))
    });
    for (c, (k, n)) in &paddle_speed {
        speed.entry(c).or_insert((*k, *n, Basis::PaddleFp32));
    }
    let gains: Vec<f64> = ncnn1
        .iter()
        .filter(|(c, _)| ncnn_uses_fp16(c))
        .filter_map(|(c, (k, _))| paddle_speed.get(c).map(|(p, _)| k / p))
        .collect();
    let fp16_gain = if gains.is_empty() { 2.0 } else { median(gains) };
    for (c, (k, n)) in ncnn1.iter().filter(|(c, _)| ncnn_uses_fp16(c)) {
        speed
            .entry(c)
            .or_insert((k / fp16_gain, *n, Basis::NcnnFp16));
    }
    // The parallel bridge: a net's parallel fraction on one cluster of an ARM device (from
    // its 1- and n-thread latencies there) over the host's.
    let host_p = host_parallel();
    let mut one: BTreeMap<(&str, &'static str, &str), f64> = BTreeMap::new();
    for r in rows.iter().filter(keep).filter(|r| r.threads == 1) {
        one.insert((r.device.as_str(), r.core, r.model.as_str()), r.ms);
    }
    let mut ratios: Vec<(&'static str, f64)> = Vec::new();
    for r in rows
        .iter()
        .filter(keep)
        .filter(|r| r.threads > 1 && r.threads <= r.cluster_cores)
    {
        let key = (r.device.as_str(), r.core, r.model.as_str());
        if let (Some(ms1), Some(ph)) = (one.get(&key), host_p.get(&r.model))
            && *ph > 0.0
        {
            let p = parallel_fraction(*ms1, r.ms, r.threads as usize);
            ratios.push((class_name(r.core), p / ph));
        }
    }
    let mut by_class: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for (c, q) in &ratios {
        by_class.entry(c).or_default().push(*q);
    }
    Fit {
        speed_per_ghz: speed,
        fp16_gain,
        parallel_bridge: median(ratios.iter().map(|r| r.1).collect()),
        parallel_bridge_by_class: by_class.into_iter().map(|(c, v)| (c, median(v))).collect(),
        host_parallel: host_p,
    }
}

fn class_name(core: &str) -> &'static str {
    match core_by_name(core).map(|c| c.class) {
        Some(device_profiles::cores::CoreClass::Little) => "in-order",
        _ => "out-of-order",
    }
}

impl Fit {
    /// The thread speed-up of a row's run: Amdahl's law with the net's host parallel fraction
    /// × the bridge, on the threads that fit the cluster (as
    /// `device_profiles::latency::thread_speedup`, with this fit's bridge).
    fn speedup(&self, r: &Row) -> f64 {
        let n = r.threads.min(r.cluster_cores.max(1)).max(1);
        let p = self.host_parallel.get(&r.model).copied().unwrap_or(0.0);
        amdahl_speedup(self.parallel_bridge * p, f64::from(n))
    }

    /// The model's speed-up of a row's run over one thread (`None` without a host parallel
    /// fraction for its net).
    pub fn thread_speedup(&self, r: &Row) -> Option<f64> {
        self.host_parallel.get(&r.model).map(|_| self.speedup(r))
    }

    /// Predicted ms of an ncnn row from ncnn's host latency `host_ms` of its net (fp16 rows
    /// predicted with the fp16 gain); `None` when the row's core type has no fitted speed.
    pub fn predict(&self, r: &Row, host_ms: f64) -> Option<f64> {
        let (k, _, _) = self.speed_per_ghz.get(r.core)?;
        let precision = if ncnn_uses_fp16(r.core) {
            self.fp16_gain
        } else {
            1.0
        };
        Some(host_ms / (k * precision * r.ghz * self.speedup(r)))
    }

    /// fp32 speed of a row's core at its clock.
    pub fn speed(&self, r: &Row) -> Option<f64> {
        self.speed_per_ghz.get(r.core).map(|(k, _, _)| k * r.ghz)
    }
}

/// One validated measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The measurement.
    pub row: Row,
    /// Predicted ms.
    pub predicted_ms: f64,
}

impl Check {
    /// predicted / measured − 1.
    pub fn error(&self) -> f64 {
        self.predicted_ms / self.row.ms - 1.0
    }
}

/// Leave-one-device-out validation on ncnn's rows: each device predicted by a fit on the others
/// (the device's own core type must have another device behind it).
pub fn leave_one_device_out(
    rows: &[Row],
    paddle: &[Row],
    host: &BTreeMap<String, f64>,
) -> Vec<Check> {
    let devices: BTreeSet<&str> = rows.iter().map(|r| r.device.as_str()).collect();
    let mut out = Vec::new();
    for d in devices {
        let f = fit(rows, paddle, host, Some(d));
        for r in rows.iter().filter(|r| r.device == d) {
            if let Some(pred) = host.get(&r.model).and_then(|h| f.predict(r, *h)) {
                out.push(Check {
                    row: r.clone(),
                    predicted_ms: pred,
                });
            }
        }
    }
    out
}

/// Leave-one-device-out validation on Paddle-Lite's fp32 rows (one thread): for each device,
/// a fit without it gives the speeds and each net's cost in host-core units (from the other
/// devices); the prediction is cost / speed.
pub fn paddle_check(rows: &[Row], paddle: &[Row], host: &BTreeMap<String, f64>) -> Vec<Check> {
    let devices: BTreeSet<&str> = paddle.iter().map(|r| r.device.as_str()).collect();
    let mut out = Vec::new();
    for d in devices {
        let f = fit(rows, paddle, host, Some(d));
        for r in paddle.iter().filter(|r| r.device == d && r.threads == 1) {
            if let Some(pred) = paddle_one_thread(&f, paddle, r) {
                out.push(Check {
                    row: r.clone(),
                    predicted_ms: pred,
                });
            }
        }
    }
    out
}

/// Predicted one-thread ms of Paddle-Lite row `r` by fit `f` (made without `r`'s device): the
/// net's cost in host-core units from the other devices (median, at least two) over `r`'s speed.
fn paddle_one_thread(f: &Fit, paddle: &[Row], r: &Row) -> Option<f64> {
    let s = f.speed(r)?;
    let others: Vec<f64> = paddle
        .iter()
        .filter(|o| o.model == r.model && o.device != r.device && o.threads == 1)
        .filter_map(|o| f.speed(o).map(|so| o.ms * so))
        .collect();
    (others.len() >= 2).then(|| median(others) / s)
}

/// Leave-one-device-out validation on Paddle-Lite's 2- and 4-thread runs (fp32, threads not bound:
/// phones with four big cores, where the scheduler puts them): the device's one-thread prediction
/// ([`paddle_check`]'s) over `thread_speedup` of the net's host parallel fraction (ncnn's, on the
/// calibration host) on [`equal_split_cores`] of the threads. Each check's `row` is the device's
/// one-thread row with the run's threads and latency.
pub fn paddle_threads_check(
    rows: &[Row],
    paddle: &[Row],
    host: &BTreeMap<String, f64>,
) -> Vec<Check> {
    let multi: Vec<Run> = runs("paddlelite_arm.csv", "paddle-lite")
        .into_iter()
        .filter(|r| r.threads > 1)
        .collect();
    let devices: BTreeSet<&str> = multi.iter().map(|r| r.device.as_str()).collect();
    let mut out = Vec::new();
    for d in devices {
        let f = fit(rows, paddle, host, Some(d));
        for run in multi.iter().filter(|r| r.device == d) {
            let Some(one) = paddle
                .iter()
                .find(|r| r.device == d && r.model == run.model && r.threads == 1)
            else {
                continue;
            };
            let (Some(pred1), Some(p)) = (
                paddle_one_thread(&f, paddle, one),
                f.host_parallel.get(&run.model),
            ) else {
                continue;
            };
            let cores = equal_split_cores(&run.cpu, run.threads as usize);
            out.push(Check {
                row: Row {
                    threads: run.threads,
                    ms: run.ms,
                    ..one.clone()
                },
                predicted_ms: pred1 / amdahl_speedup(f.parallel_bridge * p, cores),
            });
        }
    }
    out
}

/// How threads spread over the clusters of a big.LITTLE SoC count, for [`placement_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Each core at its speed, summed (`effective_cores`: work shared dynamically).
    Sum,
    /// Threads × the slowest core reached (`equal_split_cores`: equal parts, ncnn's static
    /// OpenMP schedule).
    EqualSplit,
}

/// ncnn runs on every core of a big.LITTLE SoC, predicted from the same device's run on its big
/// cluster: `ms_big × speed-up(big run) / speed-up(all-core run)`, Amdahl with the net's host
/// parallel fraction × the bridge of a fit without the device, on the cores `placement` counts.
/// The one-core speed cancels, so this checks only where the threads land and what that is worth.
/// Each check's `row` describes the all-core run (core and GHz: its fastest cluster's).
pub fn placement_check(
    rows: &[Row],
    paddle: &[Row],
    host: &BTreeMap<String, f64>,
    placement: Placement,
) -> Vec<Check> {
    let all = runs("ncnn_arm.csv", "ncnn");
    let mixed = |r: &&Run| {
        r.cluster == "all"
            && r.threads > 1
            && r.cpu
                .clusters
                .iter()
                .any(|c| c.core != r.cpu.clusters[0].core)
    };
    let devices: BTreeSet<&str> = all
        .iter()
        .filter(mixed)
        .map(|r| r.device.as_str())
        .collect();
    let cores = |cpu: &Cpu, t: u32| match placement {
        Placement::Sum => effective_cores(cpu, t as usize),
        Placement::EqualSplit => equal_split_cores(cpu, t as usize),
    };
    let mut out = Vec::new();
    for d in devices {
        let f = fit(rows, paddle, host, Some(d));
        for run in all.iter().filter(|r| r.device == d).filter(mixed) {
            let Some(p) = f.host_parallel.get(&run.model) else {
                continue;
            };
            let q = f.parallel_bridge * p;
            let speedup = |r: &Run| amdahl_speedup(q, cores(&r.cpu, r.threads));
            let big = all.iter().find(|b| {
                b.device == d
                    && b.model == run.model
                    && b.cluster.starts_with("big")
                    && b.threads > 1
            });
            let (Some(big), Some(core)) = (big, map_core_name(&run.cpu.clusters[0].core)) else {
                continue;
            };
            out.push(Check {
                row: Row {
                    source: run.source,
                    device: run.device.clone(),
                    core,
                    ghz: f64::from(run.cpu.clusters[0].max_mhz.unwrap_or(0)) / 1000.0,
                    cluster_cores: run.cpu.core_count(),
                    threads: run.threads,
                    model: run.model.clone(),
                    ms: run.ms,
                },
                predicted_ms: big.ms * speedup(big) / speedup(run),
            });
        }
    }
    out
}

fn map_core_name(canonical: &str) -> Option<&'static str> {
    core_by_name(canonical).map(|c| c.name)
}

/// Per device, core and thread count: the measured speed-up of `threads` threads on one cluster
/// over one thread (median over nets of ms at 1 thread / ms at `threads`).
pub fn measured_speedups(rows: &[Row]) -> BTreeMap<(String, &'static str, u32), f64> {
    let mut one: BTreeMap<(&str, &str, &str), f64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.threads == 1) {
        one.insert((r.device.as_str(), r.core, r.model.as_str()), r.ms);
    }
    let mut per: BTreeMap<(String, &'static str, u32), Vec<f64>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.threads > 1 && r.threads <= r.cluster_cores)
    {
        if let Some(ms1) = one.get(&(r.device.as_str(), r.core, r.model.as_str())) {
            per.entry((r.device.clone(), r.core, r.threads))
                .or_default()
                .push(ms1 / r.ms);
        }
    }
    per.into_iter().map(|(k, v)| (k, median(v))).collect()
}

/// `checks` with each device's own median error taken out (each prediction divided by the
/// device's median of predicted / measured): what a model that knew every device's one
/// correction factor would reach; the rest is the spread between nets on one device.
pub fn without_device_factor(checks: &[&Check]) -> Vec<Check> {
    let mut ratios: BTreeMap<(&str, u32), Vec<f64>> = BTreeMap::new();
    for c in checks {
        ratios
            .entry((c.row.device.as_str(), c.row.threads))
            .or_default()
            .push(c.predicted_ms / c.row.ms);
    }
    let factor: BTreeMap<(&str, u32), f64> =
        ratios.into_iter().map(|(k, v)| (k, median(v))).collect();
    checks
        .iter()
        .map(|c| Check {
            row: c.row.clone(),
            predicted_ms: c.predicted_ms / factor[&(c.row.device.as_str(), c.row.threads)],
        })
        .collect()
}

/// Share within ±25% and median |error| of `checks`.
pub fn summary(checks: &[&Check]) -> (f64, f64, usize) {
    if checks.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    let within = checks.iter().filter(|c| c.error().abs() <= 0.25).count();
    let med = median(checks.iter().map(|c| c.error().abs()).collect());
    (within as f64 / checks.len() as f64, med, checks.len())
}
