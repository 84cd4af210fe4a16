//! The training loop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checkpoint::{CHECKPOINT_FORMAT_VERSION, Checkpoint, TrainState};
use super::config::{Method, SandwichSchedule, TrainConfig};
use super::eval::{evaluate, recalibrate_bn};
use super::loss::{cross_entropy_smooth, distill, teacher_probs};
use super::optim::Optimizer;
use super::schedule::cosine_lr;
use crate::data::{Batcher, DataSplit};
use crate::elastic::BnMode;
use crate::error::{Error, Result};
use crate::net::Supernet;
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
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Epoch checkpoints to keep.
    pub keep_checkpoints: usize,
    /// With `resume`: when the latest checkpoint is damaged, continue from the newest intact
    /// earlier one instead of failing.
    pub resume_previous: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            progress: true,
            keep_checkpoints: 2,
            resume_previous: false,
        }
    }
}

/// The progressive-shrinking phase at `step`.
pub fn ps_phase(cfg: &TrainConfig, step: usize, total: usize) -> usize {
    let f = step as f64 / total.max(1) as f64;
    let mut acc = 0.0;
    for (i, p) in cfg.ps_phases.iter().enumerate() {
        acc += p;
        if f < acc - 1e-12 {
            return i;
        }
    }
    3
}

const PHASES: [&str; 4] = ["full", "kernel", "depth", "expand"];

fn ps_sample(
    space: &SearchSpace,
    phase: usize,
    in_phase_frac: f64,
    rng: &mut ChaCha8Rng,
) -> ArchConfig {
    let top = |v: &[usize], n: usize| v[v.len().saturating_sub(n)..].to_vec();
    let half = in_phase_frac < 0.5;
    let res = &space.resolutions;
    let (d, k, e) = match phase {
        0 => return ArchConfig::max(space),
        1 => (
            top(&space.depths, 1),
            space.kernel_sizes.clone(),
            top(&space.expand_ratios, 1),
        ),
        2 => (
            if half {
                top(&space.depths, 2)
            } else {
                space.depths.clone()
            },
            space.kernel_sizes.clone(),
            top(&space.expand_ratios, 1),
        ),
        _ => (
            space.depths.clone(),
            space.kernel_sizes.clone(),
            if half {
                top(&space.expand_ratios, 2)
            } else {
                space.expand_ratios.clone()
            },
        ),
    };
    ArchConfig::sample_from(space, rng, res, &d, &k, &e)
}

fn to_tensor(x: &[f32], n: usize, c: usize, r: usize, device: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(TensorData::new(x.to_vec(), [n * c * r * r]), device)
        .reshape([n, c, r, r])
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
    let device = crate::default_device();
    let ad = device.clone().autodiff();
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let tr = &data.train;
    let train_set = match cfg.train_limit {
        Some(n) if n < tr.len() => tr.take(n),
        _ => tr.clone(),
    };
    let (c, h, w) = (train_set.channels, train_set.height, train_set.width);

    // Resolve: fresh start or resume.
    let existing = if resume {
        match Checkpoint::find(run_dir) {
            Ok(ck) => ck,
            Err(e) if opts.resume_previous => {
                eprintln!("warning: {e}");
                let (ck, skipped) = Checkpoint::open_newest_intact(run_dir)?;
                for s in skipped {
                    eprintln!("warning: skipped {s}");
                }
                eprintln!("falling back to {}", ck.dir.display());
                ck.make_latest()?;
                Some(ck)
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let (mut state, mut model, mut optim, mut teacher) = match existing {
        Some(ck) => {
            if ck.state.config != *cfg {
                eprintln!(
                    "note: resuming with the config stored in {} (the one given now differs)",
                    ck.dir.display()
                );
            }
            let model = ck.load_model(&ad)?;
            let optim = ck.load_optimizer(&device)?;
            let teacher = ck.load_teacher(&device)?;
            eprintln!(
                "resuming from {} (epoch {} of {})",
                ck.dir.display(),
                ck.state.epochs_done,
                ck.state.config.epochs
            );
            (ck.state, model, optim, teacher)
        }
        None => {
            if resume {
                eprintln!("no checkpoint in {}: starting a new run", run_dir.display());
            }
            let space = cfg
                .space
                .clone()
                .unwrap_or_else(|| SearchSpace::default_for(c, train_set.class_names.len(), h));
            if space.in_channels != c || space.num_classes != train_set.class_names.len() {
                return Err(Error::config(
                    "search space",
                    format!(
                        "space has {} channels / {} classes, data has {c} / {}",
                        space.in_channels,
                        space.num_classes,
                        train_set.class_names.len()
                    ),
                ));
            }
            let (mean, std) = train_set.mean_std();
            let spe = train_set.len() / cfg.batch_size;
            if spe == 0 {
                return Err(Error::config(
                    "training config",
                    format!(
                        "batch_size {} exceeds the {} training images",
                        cfg.batch_size,
                        train_set.len()
                    ),
                ));
            }
            let state = TrainState {
                format_version: CHECKPOINT_FORMAT_VERSION,
                config: cfg.clone(),
                space: space.clone(),
                epochs_done: 0,
                global_step: 0,
                total_steps: spe * cfg.epochs,
                channels_sorted: false,
                rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_da7a),
                mean,
                std,
                class_names: train_set.class_names.clone(),
                data_dir: data.root.clone(),
                data_format: data.format,
                elapsed_s: 0.0,
                files_sha256: Default::default(),
            };
            let (model, teacher) = match &cfg.init_from {
                None => (Supernet::new(&space, cfg.seed, &ad)?, None),
                Some(p) => {
                    let ck = Checkpoint::open(p)?;
                    if ck.state.space != space {
                        return Err(Error::config(
                            "init_from",
                            format!(
                                "{}: its search space (`{}`) is not this run's (`{}`); give the \
                                 run the same `space` as the checkpoint's config",
                                ck.dir.display(),
                                ck.state.space.name,
                                space.name
                            ),
                        ));
                    }
                    let model = ck.load_model(&ad)?;
                    // a fine-tune of one sub-net distils from the family's largest (frozen)
                    let teacher = match cfg.method {
                        Method::Standalone => Some(ck.load_model(&device)?),
                        _ => None,
                    };
                    (model, teacher)
                }
            };
            let _ = std::fs::remove_file(run_dir.join("metrics.jsonl"));
            (state, model, Optimizer::new(cfg.optimizer), teacher)
        }
    };
    let cfg = state.config.clone();
    let space = state.space.clone();
    let spe = train_set.len() / cfg.batch_size;
    let warmup = (cfg.warmup_epochs * spe as f64).round() as usize;
    let mut batcher = Batcher::new(state.mean.clone(), state.std.clone());
    let mut eval_batcher = Batcher::new(state.mean.clone(), state.std.clone());
    let (max_arch, min_arch) = match (&cfg.method, &cfg.standalone_arch) {
        // a standalone run reports its one arch in both columns
        (Method::Standalone, Some(a)) => {
            a.validate(&space)?;
            (a.clone(), a.clone())
        }
        _ => (ArchConfig::max(&space), ArchConfig::min(&space)),
    };
    trim_metrics(run_dir, state.epochs_done)?;
    let mut last: Option<EpochMetrics> = None;
    let mut ckpt_dir = PathBuf::new();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());

    while state.epochs_done < cfg.epochs {
        let epoch = state.epochs_done + 1;
        let mut rng = state.rng.clone();
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut rng);
        let pb = progress_bar(opts.progress, spe as u64, epoch, cfg.epochs);
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        let mut lr = 0.0;
        for s in 0..spe {
            let step = state.global_step;
            lr = cosine_lr(cfg.optimizer.lr(), step, state.total_steps, warmup);
            let idx = &order[s * cfg.batch_size..(s + 1) * cfg.batch_size];
            let n = idx.len();
            let labels = batcher
                .fill(&train_set, idx, cfg.augment, Some(&mut rng))
                .1
                .to_vec();
            let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &ad);
            let total = match cfg.method {
                Method::Sandwich => {
                    let mut archs = vec![max_arch.clone()];
                    match cfg.sandwich_schedule {
                        SandwichSchedule::Full => {
                            archs.push(min_arch.clone());
                            for _ in 0..cfg.sandwich_random {
                                archs.push(ArchConfig::random(&space, &mut rng));
                            }
                        }
                        SandwichSchedule::Alternate if step % 2 == 0 => {
                            archs.push(min_arch.clone())
                        }
                        SandwichSchedule::Alternate => {
                            archs.push(ArchConfig::random(&space, &mut rng))
                        }
                    }
                    let x = to_tensor(
                        batcher.resized(n, c, h, w, max_arch.resolution),
                        n,
                        c,
                        max_arch.resolution,
                        &ad,
                    );
                    let logits = model.forward(x, &max_arch, BnMode::Train);
                    let soft = teacher_probs(logits.clone());
                    let mut total = cross_entropy_smooth(logits, y.clone(), cfg.label_smoothing);
                    for a in &archs[1..] {
                        let x = to_tensor(
                            batcher.resized(n, c, h, w, a.resolution),
                            n,
                            c,
                            a.resolution,
                            &ad,
                        );
                        total = total + distill(model.forward(x, a, BnMode::Train), soft.clone());
                    }
                    total
                }
                Method::Standalone => {
                    let r = max_arch.resolution;
                    let xs = batcher.resized(n, c, h, w, r).to_vec();
                    let x = to_tensor(&xs, n, c, r, &ad);
                    let logits = model.forward(x, &max_arch, BnMode::Train);
                    let mut l =
                        cross_entropy_smooth(logits.clone(), y.clone(), cfg.label_smoothing);
                    if let Some(t) = &teacher {
                        // fine-tune (`init_from`): distil from the family's largest sub-net
                        let xt = to_tensor(&xs, n, c, r, &device);
                        let tl =
                            t.forward(xt, &max_arch_at(&ArchConfig::max(&space), r), BnMode::Train);
                        let soft =
                            Tensor::<2>::from_inner(burn::tensor::activation::softmax(tl, 1));
                        l = l + distill(logits, soft);
                    }
                    l
                }
                Method::Progressive => {
                    let phase = ps_phase(&cfg, step, state.total_steps);
                    if phase >= 1 && teacher.is_none() {
                        teacher = Some(model.valid());
                    }
                    if phase >= 3 && !state.channels_sorted {
                        model = model.sort_channels();
                        optim.reset();
                        state.channels_sorted = true;
                    }
                    let start: f64 = cfg.ps_phases[..phase].iter().sum();
                    let frac = ((step as f64 / state.total_steps as f64) - start)
                        / cfg.ps_phases[phase].max(1e-9);
                    let k = if phase == 0 {
                        1
                    } else {
                        cfg.ps_subnets_per_step.max(1)
                    };
                    let mut total: Option<Tensor<1>> = None;
                    for _ in 0..k {
                        let a = ps_sample(&space, phase, frac, &mut rng);
                        let xs = batcher.resized(n, c, h, w, a.resolution).to_vec();
                        let x = to_tensor(&xs, n, c, a.resolution, &ad);
                        let logits = model.forward(x, &a, BnMode::Train);
                        let mut l =
                            cross_entropy_smooth(logits.clone(), y.clone(), cfg.label_smoothing);
                        if let Some(t) = &teacher {
                            let xt = to_tensor(&xs, n, c, a.resolution, &device);
                            let tl =
                                t.forward(xt, &max_arch_at(&max_arch, a.resolution), BnMode::Train);
                            let soft =
                                Tensor::<2>::from_inner(burn::tensor::activation::softmax(tl, 1));
                            l = l + distill(logits, soft);
                        }
                        total = Some(match total {
                            Some(t) => t + l,
                            None => l,
                        });
                    }
                    total.ok_or_else(|| Error::config("training config", "no sub-net sampled"))?
                }
            };
            let grads = GradientsParams::from_grads(total.backward(), &model);
            let lv: f32 = total.detach().into_scalar();
            if !lv.is_finite() {
                return Err(Error::config(
                    "training config",
                    format!("loss became {lv} at epoch {epoch} step {s}: lower optimizer.lr"),
                ));
            }
            model = optim.step(lr, model, grads);
            loss_sum += lv as f64;
            state.global_step += 1;
            if let Some(pb) = &pb {
                pb.inc(1);
                if s % 10 == 0 {
                    let acc = last
                        .as_ref()
                        .map(|m| {
                            format!(
                                "  last max/min {:.1}%/{:.1}%",
                                100.0 * m.max_acc,
                                100.0 * m.min_acc
                            )
                        })
                        .unwrap_or_default();
                    pb.set_message(format!(
                        "loss {:.3} lr {:.4}{acc}",
                        loss_sum / (s + 1) as f64,
                        lr
                    ));
                }
                if !tty && spe >= 10 && (s + 1) % (spe / 10) == 0 {
                    // no terminal (CI, logs): a plain line every 10% of the epoch
                    let el = t0.elapsed().as_secs_f64();
                    eprintln!(
                        "epoch {epoch}/{}: {:>3}% loss {:.3} lr {:.4} {:.0} img/s ETA {:.0} s",
                        cfg.epochs,
                        100 * (s + 1) / spe,
                        loss_sum / (s + 1) as f64,
                        lr,
                        ((s + 1) * cfg.batch_size) as f64 / el,
                        el / (s + 1) as f64 * (spe - s - 1) as f64
                    );
                }
            }
        }
        let train_s = t0.elapsed().as_secs_f64();
        state.elapsed_s += train_s;
        state.epochs_done = epoch;
        state.rng = rng;
        // evaluate the extremes after BN recalibration
        let inf = model.valid();
        let test = &data.test;
        recalibrate_bn(
            &inf,
            &max_arch,
            &train_set,
            &mut eval_batcher,
            cfg.calib_images,
            &device,
        );
        let max_acc = evaluate(
            &inf,
            &max_arch,
            test,
            &mut eval_batcher,
            cfg.eval_limit,
            &device,
        );
        recalibrate_bn(
            &inf,
            &min_arch,
            &train_set,
            &mut eval_batcher,
            cfg.calib_images,
            &device,
        );
        let min_acc = evaluate(
            &inf,
            &min_arch,
            test,
            &mut eval_batcher,
            cfg.eval_limit,
            &device,
        );
        let phase = match cfg.method {
            Method::Sandwich => "sandwich".to_string(),
            Method::Standalone => "standalone".to_string(),
            Method::Progressive => PHASES
                [ps_phase(&cfg, state.global_step.saturating_sub(1), state.total_steps)]
            .to_string(),
        };
        let m = EpochMetrics {
            epoch,
            phase,
            lr,
            train_loss: loss_sum / spe as f64,
            max_acc,
            min_acc,
            train_s,
            img_per_s: (spe * cfg.batch_size) as f64 / train_s,
        };
        // Metrics first: a crash between the two leaves a line for an epoch without a
        // checkpoint, which `--resume` trims; the other order would lose the epoch's line.
        append_metrics(run_dir, &m)?;
        ckpt_dir = Checkpoint::write(
            run_dir,
            &state,
            &model,
            &optim,
            teacher.as_ref(),
            opts.keep_checkpoints,
        )?;
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        eprintln!(
            "epoch {epoch}/{}: loss {:.4}  max {:.2}%  min {:.2}%  {:.0} img/s  ({:.0} s)",
            cfg.epochs,
            m.train_loss,
            100.0 * max_acc,
            100.0 * min_acc,
            m.img_per_s,
            train_s
        );
        last = Some(m);
    }
    let (max_acc, min_acc) = match &last {
        Some(m) => (m.max_acc, m.min_acc),
        None => {
            // already finished: evaluate the final checkpoint
            let ck = Checkpoint::open(run_dir)?;
            ckpt_dir = ck.dir.clone();
            let inf = model.valid();
            let ts = &train_set;
            recalibrate_bn(
                &inf,
                &max_arch,
                ts,
                &mut eval_batcher,
                cfg.calib_images,
                &device,
            );
            let a = evaluate(
                &inf,
                &max_arch,
                &data.test,
                &mut eval_batcher,
                cfg.eval_limit,
                &device,
            );
            recalibrate_bn(
                &inf,
                &min_arch,
                ts,
                &mut eval_batcher,
                cfg.calib_images,
                &device,
            );
            let b = evaluate(
                &inf,
                &min_arch,
                &data.test,
                &mut eval_batcher,
                cfg.eval_limit,
                &device,
            );
            (a, b)
        }
    };
    let summary = TrainSummary {
        run_dir: run_dir.to_path_buf(),
        method: cfg.method,
        epochs: state.epochs_done,
        max_acc,
        min_acc,
        train_s: state.elapsed_s,
        img_per_s: (state.global_step * cfg.batch_size) as f64 / state.elapsed_s.max(1e-9),
        checkpoint: ckpt_dir,
    };
    let p = run_dir.join("summary.json");
    let js = serde_json::to_vec_pretty(&summary).map_err(|source| Error::Json {
        path: p.clone(),
        source,
    })?;
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, js)
        .and_then(|_| std::fs::rename(&tmp, &p))
        .map_err(|e| Error::io(&p, e))?;
    Ok(summary)
}

fn max_arch_at(max: &ArchConfig, r: usize) -> ArchConfig {
    ArchConfig {
        resolution: r,
        ..max.clone()
    }
}

fn progress_bar(on: bool, len: u64, epoch: usize, epochs: usize) -> Option<indicatif::ProgressBar> {
    if !on {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(&format!(
        "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}} steps  {{per_sec}}  ETA {{eta}}  {{msg}}"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    Some(pb)
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
    let tmp = p.with_extension("jsonl.tmp");
    let mut body = keep.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    std::fs::write(&tmp, body)
        .and_then(|_| std::fs::rename(&tmp, &p))
        .map_err(|e| Error::io(&p, e))
}
