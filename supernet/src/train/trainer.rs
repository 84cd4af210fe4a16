//! The training loop, by phase: set up a run (fresh or resumed from its checkpoint), then per
//! epoch train ([`super::step::train_step`] on each batch), evaluate the largest and smallest
//! sub-nets, append the metrics line and write the checkpoint; last, the summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checkpoint::{CHECKPOINT_FORMAT_VERSION, Checkpoint, TrainState};
use super::config::{Method, TrainConfig};
use super::eval::{evaluate, recalibrate_bn};
use super::optim::Optimizer;
use super::parallel::{Shard, data_parallel_step};
use super::sampling::{PsPhase, Sampler, ps_phase};
use super::schedule::cosine_lr;
use super::step::{Distillation, Step, train_step};
use crate::data::{Batcher, DataSplit, Dataset};
use crate::device::ComputeDevice;
use crate::error::{Error, Result};
use crate::net::Supernet;
use crate::progress::Reporter;
use crate::space::{ArchConfig, SearchSpace};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Training phase at the end of the epoch.
    pub phase: String,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss (sum over the step's sub-nets).
    pub train_loss: f64,
    /// Test top-1 of the largest sub-net (after BN recalibration).
    pub max_acc: f64,
    /// Test top-1 of the smallest sub-net (after BN recalibration).
    pub min_acc: f64,
    /// Seconds of training in this epoch (evaluation excluded).
    pub train_s: f64,
    /// Training images per second (each batch counted once).
    pub img_per_s: f64,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Method used.
    pub method: Method,
    /// Epochs trained in total.
    pub epochs: usize,
    /// Final test top-1 of the largest sub-net.
    pub max_acc: f64,
    /// Final test top-1 of the smallest sub-net.
    pub min_acc: f64,
    /// Training seconds across all sessions of the run.
    pub train_s: f64,
    /// Mean training images per second.
    pub img_per_s: f64,
    /// The final checkpoint folder.
    pub checkpoint: PathBuf,
}

/// Knobs that do not change the result.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Where progress goes: a phase per epoch (one unit a step, the running loss as the
    /// message) and a note with each epoch's result. Silent by default.
    pub progress: Reporter,
    /// Epoch checkpoints to keep.
    pub keep_checkpoints: usize,
    /// With `resume`: when the latest checkpoint is damaged, continue from the newest intact
    /// earlier one instead of failing.
    pub resume_previous: bool,
    /// Where the model trains (the CPU by default). The checkpoint does not depend on it.
    pub device: ComputeDevice,
    /// Data-parallel replicas (1: the plain step): each batch is split into this many shards,
    /// one per device (on the CPU, one per thread), gradients averaged before the update
    /// ([`super::parallel`]). Batch norm then sees each shard's statistics, so a run resumed
    /// with another count is not bit-identical to one that kept its count.
    pub replicas: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            progress: Reporter::silent(),
            keep_checkpoints: 2,
            resume_previous: false,
            device: ComputeDevice::Cpu,
            replicas: 1,
        }
    }
}

/// Trains (or resumes) a supernet on `data`, writing checkpoints and metrics under `run_dir`.
///
/// # Errors
/// Bad config, data that doesn't fit the space, I/O errors on the run folder.
pub fn train(
    cfg: &TrainConfig,
    data: &DataSplit,
    run_dir: &Path,
    resume: bool,
    opts: &TrainOptions,
) -> Result<TrainSummary> {
    cfg.validate()?;
    check_replicas(opts.replicas, cfg.batch_size)?;
    let devices = Devices::new(opts.device, opts.replicas)?;
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let train_set = match cfg.train_limit {
        Some(n) if n < data.train.len() => data.train.take(n),
        _ => data.train.clone(),
    };
    let start = Start {
        cfg,
        data,
        train_set: &train_set,
        run_dir,
        resume,
        opts,
    };
    let mut run = open_run(&start, &devices)?;
    let mut session = Session::new(&run.state, train_set, data, run_dir, opts, devices)?;
    trim_metrics(run_dir, run.state.epochs_done)?;
    let mut last: Option<EpochMetrics> = None;
    let mut ckpt_dir = PathBuf::new();
    while run.state.epochs_done < session.cfg.epochs {
        let (next, trained) = session.train_epoch(run)?;
        run = next;
        let (max_acc, min_acc) = session.evaluate_extremes(&run.model.valid());
        let m = session.metrics(&run.state, &trained, (max_acc, min_acc));
        ckpt_dir = session.record_epoch(&run, &m)?;
        opts.progress.note(&format!(
            "epoch {}/{}: loss {:.4}  max {:.2}%  min {:.2}%  {:.0} img/s  ({:.0} s)",
            m.epoch,
            session.cfg.epochs,
            m.train_loss,
            100.0 * max_acc,
            100.0 * min_acc,
            m.img_per_s,
            m.train_s
        ));
        last = Some(m);
    }
    let (max_acc, min_acc) = match &last {
        Some(m) => (m.max_acc, m.min_acc),
        None => {
            // already finished: evaluate the final checkpoint
            ckpt_dir = Checkpoint::open(run_dir)?.dir;
            session.evaluate_extremes(&run.model.valid())
        }
    };
    let summary = TrainSummary {
        run_dir: run_dir.to_path_buf(),
        method: session.cfg.method,
        epochs: run.state.epochs_done,
        max_acc,
        min_acc,
        train_s: run.state.elapsed_s,
        img_per_s: (run.state.global_step * session.cfg.batch_size) as f64
            / run.state.elapsed_s.max(1e-9),
        checkpoint: ckpt_dir,
    };
    write_summary(run_dir, &summary)?;
    Ok(summary)
}

/// Data-parallel replicas must split a batch into equal shards of at least 2 images (batch
/// norm needs 2).
fn check_replicas(replicas: usize, batch_size: usize) -> Result<()> {
    if replicas == 0 || batch_size % replicas != 0 || batch_size / replicas < 2 {
        return Err(Error::config(
            "training options",
            format!(
                "--replicas {replicas} must divide batch_size {batch_size} into equal shards of at least 2 images"
            ),
        ));
    }
    Ok(())
}

/// The inference device and its autodiff twin (the model trains on the latter).
struct Devices {
    inner: Device,
    autodiff: Device,
    /// Each data-parallel replica's autodiff device (one replica: `autodiff` alone).
    replicas: Vec<Device>,
}

impl Devices {
    fn new(choice: ComputeDevice, replicas: usize) -> Result<Self> {
        let all = choice.devices(replicas)?;
        let inner = all[0].clone();
        Ok(Devices {
            autodiff: inner.clone().autodiff(),
            inner,
            replicas: all.into_iter().map(|d| d.autodiff()).collect(),
        })
    }
}

/// What a session was asked to do: the arguments of [`train`] that choose the run.
struct Start<'a> {
    cfg: &'a TrainConfig,
    data: &'a DataSplit,
    /// The training images (`train_limit` applied).
    train_set: &'a Dataset,
    run_dir: &'a Path,
    resume: bool,
    opts: &'a TrainOptions,
}

/// A run in progress: everything its checkpoint holds.
struct Run {
    state: TrainState,
    model: Supernet,
    optim: Optimizer,
    /// Progressive shrinking's frozen full network, or a fine-tune's family.
    teacher: Option<Supernet>,
}

// ---------------------------------------------------------------------------------------------
// Set-up: resume from the run folder's checkpoint, or start afresh.
// ---------------------------------------------------------------------------------------------

fn open_run(start: &Start<'_>, devices: &Devices) -> Result<Run> {
    match find_checkpoint(start)? {
        Some(ck) => resume_run(ck, start.cfg, devices, &start.opts.progress),
        None => {
            if start.resume {
                start.opts.progress.note(&format!(
                    "no checkpoint in {}: starting a new run",
                    start.run_dir.display()
                ));
            }
            fresh_run(start, devices)
        }
    }
}

/// The checkpoint to resume from: none without `resume`; with `resume_previous`, the newest
/// intact one when the latest is damaged.
fn find_checkpoint(start: &Start<'_>) -> Result<Option<Checkpoint>> {
    if !start.resume {
        return Ok(None);
    }
    match Checkpoint::find(start.run_dir) {
        Ok(ck) => Ok(ck),
        Err(e) if start.opts.resume_previous => {
            let progress = &start.opts.progress;
            progress.note(&format!("warning: {e}"));
            let (ck, skipped) = Checkpoint::open_newest_intact(start.run_dir)?;
            for s in skipped {
                progress.note(&format!("warning: skipped {s}"));
            }
            progress.note(&format!("falling back to {}", ck.dir.display()));
            ck.make_latest()?;
            Ok(Some(ck))
        }
        Err(e) => Err(e),
    }
}

fn resume_run(
    ck: Checkpoint,
    cfg: &TrainConfig,
    devices: &Devices,
    progress: &Reporter,
) -> Result<Run> {
    if ck.state.config != *cfg {
        progress.note(&format!(
            "note: resuming with the config stored in {} (the one given now differs)",
            ck.dir.display()
        ));
    }
    let model = ck.load_model(&devices.autodiff)?;
    let optim = ck.load_optimizer(&devices.inner)?;
    let teacher = ck.load_teacher(&devices.inner)?;
    progress.note(&format!(
        "resuming from {} (epoch {} of {})",
        ck.dir.display(),
        ck.state.epochs_done,
        ck.state.config.epochs
    ));
    Ok(Run {
        state: ck.state,
        model,
        optim,
        teacher,
    })
}

fn fresh_run(start: &Start<'_>, devices: &Devices) -> Result<Run> {
    let state = fresh_state(start)?;
    let (model, teacher) = initial_weights(start.cfg, &state.space, devices)?;
    let _ = std::fs::remove_file(start.run_dir.join("metrics.jsonl"));
    Ok(Run {
        state,
        model,
        optim: Optimizer::new(start.cfg.optimizer),
        teacher,
    })
}

/// The state of a run before its first step: the resolved space (checked against the data),
/// the data's normalisation, the step count and the seeded RNG stream.
fn fresh_state(start: &Start<'_>) -> Result<TrainState> {
    let (cfg, ts) = (start.cfg, start.train_set);
    let (c, h) = (ts.channels, ts.height);
    let classes = ts.class_names.len();
    let space = cfg
        .space
        .clone()
        .unwrap_or_else(|| SearchSpace::default_for(c, classes, h));
    if space.in_channels != c || space.num_classes != classes {
        return Err(Error::config(
            "search space",
            format!(
                "space has {} channels / {} classes, data has {c} / {classes}",
                space.in_channels, space.num_classes
            ),
        ));
    }
    let (mean, std) = ts.mean_std();
    let spe = ts.len() / cfg.batch_size;
    if spe == 0 {
        return Err(Error::config(
            "training config",
            format!(
                "batch_size {} exceeds the {} training images",
                cfg.batch_size,
                ts.len()
            ),
        ));
    }
    Ok(TrainState {
        format_version: CHECKPOINT_FORMAT_VERSION,
        config: cfg.clone(),
        space,
        epochs_done: 0,
        global_step: 0,
        total_steps: spe * cfg.epochs,
        channels_sorted: false,
        rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_da7a),
        mean,
        std,
        class_names: ts.class_names.clone(),
        data_dir: start.data.root.clone(),
        data_format: start.data.format,
        elapsed_s: 0.0,
        files_sha256: Default::default(),
    })
}

/// Seeded random weights, or (`init_from`) a trained family's weights; a standalone fine-tune
/// of one sub-net also gets the family as its frozen teacher.
fn initial_weights(
    cfg: &TrainConfig,
    space: &SearchSpace,
    devices: &Devices,
) -> Result<(Supernet, Option<Supernet>)> {
    let Some(p) = &cfg.init_from else {
        return Ok((Supernet::new(space, cfg.seed, &devices.autodiff)?, None));
    };
    let ck = Checkpoint::open(p)?;
    if ck.state.space != *space {
        return Err(Error::config(
            "init_from",
            format!(
                "{}: its search space (`{}`) is not this run's (`{}`); give the run the same \
                 `space` as the checkpoint's config",
                ck.dir.display(),
                ck.state.space.name,
                space.name
            ),
        ));
    }
    let model = ck.load_model(&devices.autodiff)?;
    let teacher = match cfg.method {
        Method::Standalone => Some(ck.load_model(&devices.inner)?),
        _ => None,
    };
    Ok((model, teacher))
}

// ---------------------------------------------------------------------------------------------
// The session: epochs of training, evaluation and checkpoints.
// ---------------------------------------------------------------------------------------------

/// What stays fixed while a run trains in this process, and the batch buffers.
struct Session<'a> {
    /// The run's config (the checkpoint's, when resumed).
    cfg: TrainConfig,
    space: SearchSpace,
    train_set: Dataset,
    test: &'a Dataset,
    run_dir: &'a Path,
    opts: &'a TrainOptions,
    steps_per_epoch: usize,
    warmup_steps: usize,
    /// The largest and the smallest sub-net (a standalone run's one arch in both).
    extremes: (ArchConfig, ArchConfig),
    devices: Devices,
    /// One batcher per data-parallel replica, each filled with its shard of the batch.
    batchers: Vec<Batcher>,
    eval_batcher: Batcher,
}

/// What an epoch of training measured.
struct EpochTraining {
    /// Mean loss of its steps.
    loss: f64,
    /// Learning rate of its last step.
    lr: f64,
    /// Seconds of training.
    train_s: f64,
}

impl<'a> Session<'a> {
    fn new(
        state: &TrainState,
        train_set: Dataset,
        data: &'a DataSplit,
        run_dir: &'a Path,
        opts: &'a TrainOptions,
        devices: Devices,
    ) -> Result<Self> {
        let cfg = state.config.clone();
        let space = state.space.clone();
        let steps_per_epoch = train_set.len() / cfg.batch_size;
        let extremes = match (&cfg.method, &cfg.standalone_arch) {
            // a standalone run reports its one arch in both columns
            (Method::Standalone, Some(a)) => {
                a.validate(&space)?;
                (a.clone(), a.clone())
            }
            _ => (ArchConfig::max(&space), ArchConfig::min(&space)),
        };
        Ok(Session {
            warmup_steps: (cfg.warmup_epochs * steps_per_epoch as f64).round() as usize,
            steps_per_epoch,
            extremes,
            batchers: (0..devices.replicas.len())
                .map(|_| Batcher::new(state.mean.clone(), state.std.clone()))
                .collect(),
            eval_batcher: Batcher::new(state.mean.clone(), state.std.clone()),
            cfg,
            space,
            train_set,
            test: &data.test,
            run_dir,
            opts,
            devices,
        })
    }

    /// One epoch: the batches in a freshly shuffled order, one [`train_step`] each.
    fn train_epoch(&mut self, mut run: Run) -> Result<(Run, EpochTraining)> {
        let (cfg, spe) = (&self.cfg, self.steps_per_epoch);
        let epoch = run.state.epochs_done + 1;
        let mut rng = run.state.rng.clone();
        let mut order: Vec<usize> = (0..self.train_set.len()).collect();
        order.shuffle(&mut rng);
        let sampler = Sampler::new(
            cfg,
            &self.space,
            (&self.extremes.0, &self.extremes.1),
            run.state.total_steps,
        );
        let progress = self
            .opts
            .progress
            .phase(&format!("epoch {epoch}/{}", cfg.epochs), spe as u64);
        let t0 = Instant::now();
        let (mut loss_sum, mut lr) = (0.0, 0.0);
        for s in 0..spe {
            let step = run.state.global_step;
            lr = cosine_lr(
                cfg.optimizer.lr(),
                step,
                run.state.total_steps,
                self.warmup_steps,
            );
            let idx = &order[s * cfg.batch_size..(s + 1) * cfg.batch_size];
            // shard by shard, in batch order: the same augmentation draws as one batch
            // (`check_replicas` made the shards equal)
            let per = idx.len() / self.batchers.len();
            for (b, part) in self.batchers.iter_mut().zip(idx.chunks(per)) {
                b.fill(&self.train_set, part, cfg.augment, Some(&mut rng));
            }
            if cfg.method == Method::Progressive {
                run = enter_ps_phase(run, step);
            }
            let archs = sampler.archs(step, &mut rng);
            let distillation = match cfg.method {
                Method::Sandwich => Distillation::InPlace,
                Method::Progressive | Method::Standalone => {
                    Distillation::Teacher(run.teacher.as_ref())
                }
            };
            let step_spec = Step {
                archs: &archs,
                distillation,
                label_smoothing: cfg.label_smoothing,
                lr,
                device: &self.devices.autodiff,
            };
            let stepped = match self.batchers.as_mut_slice() {
                [one] => train_step(run.model, &mut run.optim, one, &step_spec),
                many => {
                    let mut shards: Vec<Shard<'_>> = many
                        .iter_mut()
                        .zip(&self.devices.replicas)
                        .map(|(batcher, device)| Shard {
                            device: device.clone(),
                            batcher,
                        })
                        .collect();
                    data_parallel_step(run.model, &mut run.optim, &mut shards, &step_spec)
                }
            };
            let (model, out) = stepped.map_err(|e| match e {
                Error::Diverged { loss } => Error::config(
                    "training config",
                    format!("loss became {loss} at epoch {epoch} step {s}: lower optimizer.lr"),
                ),
                e => e,
            })?;
            run.model = model;
            loss_sum += out.loss as f64;
            run.state.global_step += 1;
            progress.message(&format!(
                "loss {:.3} lr {:.4} {:.0} img/s",
                loss_sum / (s + 1) as f64,
                lr,
                ((s + 1) * cfg.batch_size) as f64 / t0.elapsed().as_secs_f64()
            ));
            progress.advance(1);
        }
        let train_s = t0.elapsed().as_secs_f64();
        run.state.elapsed_s += train_s;
        run.state.epochs_done = epoch;
        run.state.rng = rng;
        let trained = EpochTraining {
            loss: loss_sum / spe as f64,
            lr,
            train_s,
        };
        Ok((run, trained))
    }

    /// Test top-1 of the largest and the smallest sub-net, each after BN recalibration on the
    /// training images.
    fn evaluate_extremes(&mut self, inf: &Supernet) -> (f64, f64) {
        let (max, min) = self.extremes.clone();
        let mut acc = |arch: &ArchConfig| {
            let (cfg, dev, b) = (&self.cfg, &self.devices.inner, &mut self.eval_batcher);
            recalibrate_bn(inf, arch, &self.train_set, b, cfg.calib_images, dev);
            evaluate(inf, arch, self.test, b, cfg.eval_limit, dev)
        };
        (acc(&max), acc(&min))
    }

    /// The metrics line of the epoch just trained.
    fn metrics(
        &self,
        state: &TrainState,
        trained: &EpochTraining,
        (max_acc, min_acc): (f64, f64),
    ) -> EpochMetrics {
        let phase = match self.cfg.method {
            Method::Sandwich => "sandwich",
            Method::Standalone => "standalone",
            Method::Progressive => ps_phase(
                &self.cfg,
                state.global_step.saturating_sub(1),
                state.total_steps,
            )
            .name(),
        };
        EpochMetrics {
            epoch: state.epochs_done,
            phase: phase.to_string(),
            lr: trained.lr,
            train_loss: trained.loss,
            max_acc,
            min_acc,
            train_s: trained.train_s,
            img_per_s: (self.steps_per_epoch * self.cfg.batch_size) as f64 / trained.train_s,
        }
    }

    /// Appends the metrics line, then writes the checkpoint; returns its folder.
    fn record_epoch(&self, run: &Run, m: &EpochMetrics) -> Result<PathBuf> {
        // Metrics first: a crash between the two leaves a line for an epoch without a
        // checkpoint, which `--resume` trims; the other order would lose the epoch's line.
        append_metrics(self.run_dir, m)?;
        Checkpoint::write(
            self.run_dir,
            &run.state,
            &run.model,
            &run.optim,
            run.teacher.as_ref(),
            self.opts.keep_checkpoints,
        )
    }
}

/// Progressive shrinking's phase changes before the step at `step`: the full network becomes
/// the frozen teacher when the kernel phase starts; the channels are sorted (the hidden ones and,
/// in a width-elastic space, each stage's output) and the optimizer state reset when the expand
/// phase, which opens widths too, starts.
fn enter_ps_phase(mut run: Run, step: usize) -> Run {
    let phase = ps_phase(&run.state.config, step, run.state.total_steps);
    if phase != PsPhase::Full && run.teacher.is_none() {
        run.teacher = Some(run.model.valid());
    }
    if phase == PsPhase::Expand && !run.state.channels_sorted {
        // a width-free space's stages are left as they are
        run.model = run.model.sort_stage_channels().sort_channels();
        run.optim.reset();
        run.state.channels_sorted = true;
    }
    run
}

// ---------------------------------------------------------------------------------------------
// Files of the run folder besides checkpoints: metrics.jsonl and summary.json.
// ---------------------------------------------------------------------------------------------

fn write_summary(run_dir: &Path, summary: &TrainSummary) -> Result<()> {
    let p = run_dir.join("summary.json");
    let js = serde_json::to_vec_pretty(summary).map_err(|source| Error::Json {
        path: p.clone(),
        source,
    })?;
    netspec::fsio::write_atomic(&p, &js).map_err(|e| Error::io(&p, e))
}

fn append_metrics(run_dir: &Path, m: &EpochMetrics) -> Result<()> {
    let p = run_dir.join("metrics.jsonl");
    let line = serde_json::to_string(m).map_err(|source| Error::Json {
        path: p.clone(),
        source,
    })?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    writeln!(f, "{line}").map_err(|e| Error::io(&p, e))
}

/// Drops metric lines of epochs after `epochs_done` (written before a crash, not checkpointed).
fn trim_metrics(run_dir: &Path, epochs_done: usize) -> Result<()> {
    let p = run_dir.join("metrics.jsonl");
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(());
    };
    let keep: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<EpochMetrics>(l)
                .map(|m| m.epoch <= epochs_done)
                .unwrap_or(false)
        })
        .collect();
    let mut body = keep.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    netspec::fsio::write_atomic(&p, body.as_bytes()).map_err(|e| Error::io(&p, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::toy::toy_dataset;
    use crate::data::{Augment, DatasetFormat};
    use crate::train::config::OptimizerConfig;

    #[test]
    fn a_tiny_run_lowers_its_loss_and_beats_chance() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataSplit {
            train: toy_dataset(160, 12, 4, 0),
            test: toy_dataset(40, 12, 4, 1000),
            format: DatasetFormat::Idx,
            root: dir.path().to_path_buf(),
        };
        let cfg = TrainConfig {
            seed: 7,
            epochs: 4,
            batch_size: 16,
            calib_images: 64,
            warmup_epochs: 0.0,
            augment: Augment::none(),
            optimizer: OptimizerConfig::Sgd {
                lr: 0.05,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-4,
            },
            space: Some(SearchSpace::tiny(1, 4, 12)),
            ..TrainConfig::default()
        };
        let run = dir.path().join("run");
        let s = train(&cfg, &data, &run, false, &TrainOptions::default()).unwrap();
        let losses: Vec<f64> = std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<EpochMetrics>(l).unwrap().train_loss)
            .collect();
        assert_eq!(losses.len(), 4);
        assert!(losses[3] < 0.8 * losses[0], "{losses:?}");
        // four classes: chance is 25%
        assert!(s.max_acc > 0.5 && s.min_acc > 0.4, "{s:?}");
    }
}
