//! Which sub-nets a training step trains: the sandwich rule's largest, smallest and random
//! sub-nets, progressive shrinking's phase-restricted samples, or a standalone run's one arch.

use rand_chacha::ChaCha8Rng;

use rand::seq::IndexedRandom;

use super::config::{Method, ResolutionSchedule, SandwichSchedule, TrainConfig};
use crate::space::{ArchConfig, SearchSpace};

/// A phase of progressive shrinking (OFA): what is elastic in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsPhase {
    /// The full network only.
    Full,
    /// Elastic kernel size.
    Kernel,
    /// Elastic kernel size and depth.
    Depth,
    /// Everything elastic, expand ratio and (in a width-elastic space) stage width too.
    Expand,
}

impl PsPhase {
    const ALL: [PsPhase; 4] = [
        PsPhase::Full,
        PsPhase::Kernel,
        PsPhase::Depth,
        PsPhase::Expand,
    ];

    /// The phase's position (0..4), its index in `TrainConfig::ps_phases`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name written to `metrics.jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            PsPhase::Full => "full",
            PsPhase::Kernel => "kernel",
            PsPhase::Depth => "depth",
            PsPhase::Expand => "expand",
        }
    }
}

/// The progressive-shrinking phase at global step `step` of `total`.
pub fn ps_phase(cfg: &TrainConfig, step: usize, total: usize) -> PsPhase {
    let f = step as f64 / total.max(1) as f64;
    let mut acc = 0.0;
    for (phase, p) in PsPhase::ALL.iter().zip(&cfg.ps_phases) {
        acc += p;
        if f < acc - 1e-12 {
            return *phase;
        }
    }
    PsPhase::Expand
}

/// One sub-net of progressive-shrinking phase `phase`, `in_phase_frac` (0..1) of the way through
/// it: the first half of the depth and expand phases opens only the two largest choices.
pub fn sample_in_phase(
    space: &SearchSpace,
    phase: PsPhase,
    in_phase_frac: f64,
    rng: &mut ChaCha8Rng,
) -> ArchConfig {
    fn top<T: Clone>(v: &[T], n: usize) -> Vec<T> {
        v[v.len().saturating_sub(n)..].to_vec()
    }
    let half = in_phase_frac < 0.5;
    let res = &space.resolutions;
    // width opens with the expand ratio (both are channel counts, sorted before the phase)
    let m = match phase {
        PsPhase::Expand if half => top(&space.width_multipliers, 2),
        PsPhase::Expand => space.width_multipliers.clone(),
        _ => top(&space.width_multipliers, 1),
    };
    let (d, k, e) = match phase {
        PsPhase::Full => return ArchConfig::max(space),
        PsPhase::Kernel => (
            top(&space.depths, 1),
            space.kernel_sizes.clone(),
            top(&space.expand_ratios, 1),
        ),
        PsPhase::Depth => (
            if half {
                top(&space.depths, 2)
            } else {
                space.depths.clone()
            },
            space.kernel_sizes.clone(),
            top(&space.expand_ratios, 1),
        ),
        PsPhase::Expand => (
            space.depths.clone(),
            space.kernel_sizes.clone(),
            if half {
                top(&space.expand_ratios, 2)
            } else {
                space.expand_ratios.clone()
            },
        ),
    };
    ArchConfig::sample_from(space, rng, res, &d, &k, &e, &m)
}

/// Chooses each step's sub-nets for a run.
#[derive(Debug, Clone)]
pub struct Sampler<'a> {
    cfg: &'a TrainConfig,
    space: &'a SearchSpace,
    largest: &'a ArchConfig,
    smallest: &'a ArchConfig,
    total_steps: usize,
}

impl<'a> Sampler<'a> {
    /// A sampler for a run of `total_steps` steps of `cfg` over `space`, whose extremes are
    /// `largest` and `smallest` (a standalone run's one arch in both).
    pub fn new(
        cfg: &'a TrainConfig,
        space: &'a SearchSpace,
        (largest, smallest): (&'a ArchConfig, &'a ArchConfig),
        total_steps: usize,
    ) -> Self {
        Sampler {
            cfg,
            space,
            largest,
            smallest,
            total_steps,
        }
    }

    /// The sub-nets of global step `step`, in the order they run, drawn from `rng`.
    pub fn archs(&self, step: usize, rng: &mut ChaCha8Rng) -> Vec<ArchConfig> {
        let cfg = self.cfg;
        match cfg.method {
            Method::Sandwich => {
                let mut archs = vec![self.largest.clone()];
                match cfg.sandwich_schedule {
                    SandwichSchedule::Full => {
                        archs.push(self.smallest.clone());
                        for _ in 0..cfg.sandwich_random {
                            archs.push(ArchConfig::random(self.space, rng));
                        }
                    }
                    SandwichSchedule::Alternate if step.is_multiple_of(2) => {
                        archs.push(self.smallest.clone())
                    }
                    SandwichSchedule::Alternate => archs.push(ArchConfig::random(self.space, rng)),
                }
                let from = match cfg.resolution_schedule {
                    ResolutionSchedule::Ends => archs.len(),
                    ResolutionSchedule::PerStep => 0,
                    ResolutionSchedule::ChildrenPerStep => 1,
                };
                if from < archs.len()
                    && let Some(&r) = self.space.resolutions.choose(rng)
                {
                    for a in &mut archs[from..] {
                        a.resolution = r;
                    }
                }
                archs
            }
            Method::Standalone => vec![self.largest.clone()],
            Method::Progressive => {
                let phase = ps_phase(cfg, step, self.total_steps);
                let i = phase.index();
                let start: f64 = cfg.ps_phases[..i].iter().sum();
                let frac =
                    ((step as f64 / self.total_steps as f64) - start) / cfg.ps_phases[i].max(1e-9);
                let k = if phase == PsPhase::Full {
                    1
                } else {
                    cfg.ps_subnets_per_step.max(1)
                };
                (0..k)
                    .map(|_| sample_in_phase(self.space, phase, frac, rng))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn phases_follow_the_configured_fractions() {
        let cfg = TrainConfig {
            ps_phases: [0.1, 0.2, 0.3, 0.4],
            ..TrainConfig::default()
        };
        let at = |s| ps_phase(&cfg, s, 100);
        assert_eq!(
            [at(0), at(9), at(10), at(29), at(30), at(59), at(60), at(99)],
            [
                PsPhase::Full,
                PsPhase::Full,
                PsPhase::Kernel,
                PsPhase::Kernel,
                PsPhase::Depth,
                PsPhase::Depth,
                PsPhase::Expand,
                PsPhase::Expand
            ]
        );
    }

    #[test]
    fn per_step_resolution_puts_every_subnet_of_a_step_at_one_random_resolution() {
        let space = SearchSpace::small_for(1, 10, 28);
        let base = TrainConfig {
            space: Some(space.clone()),
            sandwich_random: 2,
            ..TrainConfig::default()
        };
        let per_step = TrainConfig {
            resolution_schedule: ResolutionSchedule::PerStep,
            ..base.clone()
        };
        let (max, min) = (ArchConfig::max(&space), ArchConfig::min(&space));
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let sampler = Sampler::new(&per_step, &space, (&max, &min), 100);
        for step in 0..60 {
            let archs = sampler.archs(step, &mut rng);
            assert_eq!(archs.len(), 4);
            let r = archs[0].resolution;
            assert!(archs.iter().all(|a| a.resolution == r), "step {step}");
            // the ends keep their other choices
            assert_eq!(
                ArchConfig {
                    resolution: max.resolution,
                    ..archs[0].clone()
                },
                max
            );
            assert_eq!(
                ArchConfig {
                    resolution: min.resolution,
                    ..archs[1].clone()
                },
                min
            );
            seen.insert(r);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), space.resolutions);
        // the default keeps each end at its own resolution
        let sampler = Sampler::new(&base, &space, (&max, &min), 100);
        let archs = sampler.archs(0, &mut rng);
        assert_eq!((&archs[0], &archs[1]), (&max, &min));
    }

    #[test]
    fn widths_open_with_the_expand_phase() {
        let mut space = SearchSpace::tiny(1, 4, 12);
        space.width_multipliers = vec![0.5, 0.75, 1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (mut early, mut late) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for _ in 0..200 {
            for phase in [PsPhase::Full, PsPhase::Kernel, PsPhase::Depth] {
                let a = sample_in_phase(&space, phase, 0.7, &mut rng);
                assert!(a.widths.is_empty(), "{phase:?} narrowed {a:?}");
            }
            early.insert(
                sample_in_phase(&space, PsPhase::Expand, 0.2, &mut rng).stage_width(&space, 0),
            );
            late.insert(
                sample_in_phase(&space, PsPhase::Expand, 0.7, &mut rng).stage_width(&space, 0),
            );
        }
        // stage 0 (6 wide): 3, 5, 6; the first half opens the two widest
        assert_eq!(early.into_iter().collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(late.into_iter().collect::<Vec<_>>(), vec![3, 5, 6]);
    }

    #[test]
    fn each_phase_opens_only_its_dimensions() {
        let space = SearchSpace::tiny(1, 4, 12);
        let max = ArchConfig::max(&space);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let kmax = *space.kernel_sizes.last().unwrap();
        let (mut small_kernel, mut shallow, mut narrow) = (false, false, false);
        for _ in 0..200 {
            assert_eq!(sample_in_phase(&space, PsPhase::Full, 0.7, &mut rng), max);
            let k = sample_in_phase(&space, PsPhase::Kernel, 0.7, &mut rng);
            assert_eq!(
                (&k.depths, &k.expand_ratios),
                (&max.depths, &max.expand_ratios)
            );
            small_kernel |= k.kernel_sizes.iter().flatten().any(|&x| x < kmax);
            let d = sample_in_phase(&space, PsPhase::Depth, 0.7, &mut rng);
            assert!(d.expand_ratios.iter().flatten().all(|&e| e == 3));
            shallow |= d.depths.iter().any(|&x| x < 2);
            let e = sample_in_phase(&space, PsPhase::Expand, 0.7, &mut rng);
            narrow |= e.expand_ratios.iter().flatten().any(|&x| x < 3);
        }
        assert!(small_kernel && shallow && narrow);
    }
}
