//! The host a measurement was taken on: the one type the latency table, the bundle's timing and
//! QA record it in, and the one way they probe it ([`HostInfo::probe`]: the median of a few
//! back-to-back probes).

use device_profiles::{DeviceProfile, Figures, ProbeOptions};
use serde::{Deserialize, Serialize};

/// Probes [`HostInfo::probe_default`] takes.
pub const DEFAULT_PROBE_RUNS: usize = 5;

/// The host a latency table was timed on or a QA run emulated phones on.
///
/// Latency tables written before the probe was recorded hold only `cpu` (read as `name`) and
/// `score`; the other fields read as unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostInfo {
    /// Probe id (`host-<fingerprint>`); empty when not recorded.
    #[serde(default)]
    pub id: String,
    /// CPU / machine name, or `unknown`.
    #[serde(alias = "cpu")]
    pub name: String,
    /// Logical cores this process may use (`None`: not recorded).
    #[serde(default)]
    pub cores: Option<usize>,
    /// Capability score (same scale as the catalog's): the median of [`HostInfo::probe_scores`].
    pub score: f64,
    /// The figures of the probe with that score (`None`: not recorded).
    #[serde(default)]
    pub figures: Option<Figures>,
    /// Time budget of each probe, ms (`None`: not recorded).
    #[serde(default)]
    pub probe_budget_ms: Option<u32>,
    /// The score of every probe, in the order run (empty: not recorded).
    #[serde(default)]
    pub probe_scores: Vec<f64>,
}

impl HostInfo {
    /// Probes this host `runs` times (at least once) back to back with `options` and keeps the
    /// probe of the median score (for an even count, the upper middle one). Each probe already
    /// keeps its phases' fastest repetitions; this machine's speed drifts by ±15% over seconds,
    /// and the best of several probes would pick a peak it does not sustain.
    pub fn probe(options: &ProbeOptions, runs: usize) -> Self {
        let runs: Vec<DeviceProfile> = (0..runs.max(1))
            .map(|_| device_profiles::probe(options))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HostInfo::from_probes(runs, cores, options.budget_ms)
    }

    /// [`HostInfo::probe`] with the default options, [`DEFAULT_PROBE_RUNS`] times (the latency
    /// table's and the bundle timing's host).
    pub fn probe_default() -> Self {
        HostInfo::probe(&ProbeOptions::default(), DEFAULT_PROBE_RUNS)
    }

    /// The host from probes already run: the one with the median score.
    ///
    /// # Panics
    /// Never: an empty `runs` gives a host of score 0 named `unknown`.
    pub fn from_probes(mut runs: Vec<DeviceProfile>, cores: usize, budget_ms: u32) -> Self {
        let probe_scores: Vec<f64> = runs.iter().map(|p| p.score).collect();
        runs.sort_by(|a, b| a.score.total_cmp(&b.score));
        let mid = runs.len() / 2;
        match (mid < runs.len()).then(|| runs.swap_remove(mid)) {
            Some(p) => HostInfo {
                id: p.id,
                name: p.name,
                cores: Some(cores),
                score: p.score,
                figures: Some(p.measured),
                probe_budget_ms: Some(budget_ms),
                probe_scores,
            },
            None => HostInfo {
                id: String::new(),
                name: "unknown".into(),
                cores: Some(cores),
                score: 0.0,
                figures: None,
                probe_budget_ms: Some(budget_ms),
                probe_scores,
            },
        }
    }

    /// A host known only by name and score (tests, tables measured elsewhere).
    pub fn named(name: impl Into<String>, score: f64) -> Self {
        HostInfo {
            id: String::new(),
            name: name.into(),
            cores: None,
            score,
            figures: None,
            probe_budget_ms: None,
            probe_scores: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(score: f64) -> DeviceProfile {
        let mut p = device_profiles::catalog::builtin().unwrap().remove(0);
        p.score = score;
        p.id = format!("p{score}");
        p
    }

    #[test]
    fn the_median_probe_is_kept_with_every_score_in_order() {
        let h = HostInfo::from_probes(
            vec![
                profile(90.0),
                profile(130.0),
                profile(100.0),
                profile(80.0),
                profile(120.0),
            ],
            2,
            20,
        );
        assert_eq!(h.score, 100.0);
        assert_eq!(h.id, "p100");
        assert_eq!(h.probe_scores, vec![90.0, 130.0, 100.0, 80.0, 120.0]);
        assert_eq!((h.cores, h.probe_budget_ms), (Some(2), Some(20)));
        assert!(h.figures.is_some());
        let none = HostInfo::from_probes(Vec::new(), 2, 20);
        assert_eq!((none.score, none.name.as_str()), (0.0, "unknown"));
    }

    #[test]
    fn older_latency_tables_read_with_the_unknowns_unknown() {
        let h: HostInfo = serde_json::from_str(r#"{"cpu":"AMD EPYC","score":212.5}"#).unwrap();
        assert_eq!(h, HostInfo::named("AMD EPYC", 212.5));
        let back: HostInfo = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert!(serde_json::from_str::<HostInfo>(r#"{"name":"x","score":1,"gpu":1}"#).is_err());
    }
}
