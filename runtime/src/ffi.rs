//! The C ABI: what an Android (JNI/Kotlin) or iOS (Swift) app calls. The header is
//! `runtime/include/tierforge.h`, generated from this file by cbindgen (a test fails when it
//! drifts: run `TIERFORGE_BLESS=1 cargo test -p runtime --test it header` to regenerate it).
//!
//! # Model
//! Objects are named by **handles**: 64-bit numbers, never reused, looked up in a process-wide
//! table. A closed or unknown handle is an error ([`TfStatus::InvalidHandle`]), never undefined
//! behaviour. Every function returns a [`TfStatus`]; on an error the message (naming the file
//! and the fix) is kept per handle and read with [`tf_last_error`] (handle 0: the calling
//! thread's last error of a call that had no valid handle, e.g. a failed open). No Rust panic
//! crosses the boundary: each entry point catches it and returns [`TfStatus::Internal`].
//!
//! # Threads
//! Every function may be called from any thread. Calls on one launch handle are serialised
//! (a mutex per launch): share a launch between threads, or open one per thread for parallel
//! inference.
//!
//! # Pointers
//! NULL where a pointer is required is [`TfStatus::NullArgument`]. Buffers are passed with their
//! length; the caller guarantees that a non-NULL pointer points to at least that many elements
//! (C cannot check this), and that strings are NUL-terminated.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::bundle::Bundle;
use crate::error::Error;
use crate::launch::{Launch, LaunchOptions, Launcher};
use crate::session::ImageRef;

/// The version of this C ABI; [`tf_abi_version`] returns it. Bumped on any incompatible change.
pub const TF_ABI_VERSION: u32 = 1;

/// What a call did.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfStatus {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullArgument = 1,
    /// An argument is out of range (a budget ≤ 0 or NaN, a string that is not a path, …).
    InvalidArgument = 2,
    /// The handle is unknown, of the wrong kind, or already closed.
    InvalidHandle = 3,
    /// The bundle cannot be opened: no or invalid `manifest.json`, a newer format, a file that is
    /// not a regular file.
    BundleInvalid = 4,
    /// No variant of the bundle verifies and loads (every file missing or damaged).
    NoVariantLoads = 5,
    /// The image does not fit: wrong channel count, a zero side, or a buffer whose length is not
    /// `width · height · channels`.
    BadImage = 6,
    /// An output buffer is too small (or, for probabilities, not exactly the class count).
    BufferTooSmall = 7,
    /// A file or folder could not be read or written (the app-data folder, say).
    Io = 8,
    /// A bug in the runtime (a caught panic). The message says where; please report it.
    Internal = 9,
}

/// Options of [`tf_launch`]. Initialise with [`tf_launch_options_default`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TfLaunchOptions {
    /// Must be [`TF_ABI_VERSION`].
    pub abi_version: u32,
    /// Latency budget per image, ms; 0 = the bundle's default.
    pub latency_budget_ms: f64,
    /// The most threads one image may run on (the runtime chooses per variant and device, up
    /// to this), and the probe's and batches' threads; 0 = the runtime's choice, all cores for
    /// the probe.
    pub threads: u32,
    /// Predictions watched after loading for a median over budget (then a step-down to a
    /// smaller variant, persisted); 0 turns the watch off. Default 5.
    pub latency_window: u32,
}

/// What a launch decided and did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TfDecision {
    /// Predicted latency of the loaded variant on this device, ms.
    pub predicted_latency_ms: f64,
    /// 1 when both caches were used (no probe, no fresh selection), else 0.
    pub cache_warm: i32,
    /// 1 when the loaded variant fits the latency and memory budgets, 0 when nothing fit and
    /// the smallest was taken.
    pub fits: i32,
    /// Variants skipped because their file failed to verify or load.
    pub fallbacks: u32,
    /// Step-downs after loading because predictions ran over budget.
    pub latency_step_downs: u32,
    /// Threads one image runs on (the runtime's choice for the loaded variant on this device).
    pub threads: u32,
    /// Classes the model predicts (the length of a probabilities buffer).
    pub num_classes: u32,
}

enum Object {
    Bundle(Arc<Bundle>),
    Launch(Arc<Mutex<Launch>>),
}

struct Entry {
    object: Object,
    last_error: String,
}

#[derive(Default)]
struct Registry {
    next: u64,
    entries: HashMap<u64, Entry>,
    /// Last errors of closed handles, so a message survives the close that caused it. Bounded.
    closed: HashMap<u64, String>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let m = REGISTRY.get_or_init(|| Mutex::new(Registry::default()));
    // A panic while holding the lock cannot leave the table inconsistent (every update is one
    // insert or remove), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    static THREAD_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// An error to return: its status and message.
struct Fail(TfStatus, String);

type Res<T> = std::result::Result<T, Fail>;

fn fail(status: TfStatus, msg: impl Into<String>) -> Fail {
    Fail(status, msg.into())
}

fn status_of(e: &Error) -> TfStatus {
    match e {
        Error::NoManifest { .. }
        | Error::Json { .. }
        | Error::NewerFormat { .. }
        | Error::UnsupportedFormat { .. }
        | Error::InvalidManifest { .. }
        | Error::BadFileName { .. }
        | Error::InvalidArch { .. }
        | Error::InvalidSpace { .. }
        | Error::NotRegularFile { .. } => TfStatus::BundleInvalid,
        Error::AllVariantsFailed { .. }
        | Error::AllExcluded { .. }
        | Error::MissingFile { .. }
        | Error::Truncated { .. }
        | Error::SizeMismatch { .. }
        | Error::ChecksumMismatch { .. }
        | Error::LoadFailed { .. }
        | Error::UnsupportedNet { .. } => TfStatus::NoVariantLoads,
        Error::BadInput { .. } => TfStatus::BadImage,
        Error::Io { .. } => TfStatus::Io,
        Error::InvalidPolicy { .. } | Error::InvalidDevice { .. } | Error::Threads { .. } => {
            TfStatus::InvalidArgument
        }
        _ => TfStatus::Internal,
    }
}

fn from_error(e: Error) -> Fail {
    Fail(status_of(&e), e.to_string())
}

fn set_error(handle: u64, msg: String) {
    if handle != 0 {
        let mut r = registry();
        if let Some(e) = r.entries.get_mut(&handle) {
            e.last_error = msg;
            return;
        }
        if let Some(m) = r.closed.get_mut(&handle) {
            m.clone_from(&msg);
        }
    }
    THREAD_ERROR.with(|t| *t.borrow_mut() = msg);
}

/// Runs `f` with panics caught, recording an error's message on `handle` (0: the thread).
fn guard(handle: u64, f: impl FnOnce() -> Res<()>) -> TfStatus {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(fail(
            TfStatus::Internal,
            format!("internal error in the tierforge runtime (please report it): {what}"),
        ))
    });
    match outcome {
        Ok(()) => {
            set_error(handle, String::new());
            TfStatus::Ok
        }
        Err(Fail(status, msg)) => {
            set_error(handle, msg);
            status
        }
    }
}

fn not_null<T>(p: *const T, name: &str) -> Res<()> {
    if p.is_null() {
        Err(fail(
            TfStatus::NullArgument,
            format!("`{name}` is NULL; pass a valid pointer"),
        ))
    } else {
        Ok(())
    }
}

/// # Safety
/// `p` is non-NULL and points to a NUL-terminated string.
unsafe fn path_arg(p: *const c_char, name: &str) -> Res<PathBuf> {
    not_null(p, name)?;
    // SAFETY: the caller's contract (documented in the header).
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(fail(
            TfStatus::InvalidArgument,
            format!("`{name}` is an empty string; pass a folder path"),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes)
            .map(PathBuf::from)
            .map_err(|_| fail(TfStatus::InvalidArgument, format!("`{name}` is not UTF-8")))
    }
}

fn handle_error(h: u64, want: &str) -> Fail {
    let closed = registry().closed.contains_key(&h);
    fail(
        TfStatus::InvalidHandle,
        if h == 0 {
            format!("the {want} handle is 0 (a failed open or launch returns no handle)")
        } else if closed {
            format!("{want} handle {h} is closed; open a new one")
        } else {
            format!("{h} is not an open {want} handle")
        },
    )
}

fn bundle_of(h: u64) -> Res<Arc<Bundle>> {
    match registry().entries.get(&h).map(|e| &e.object) {
        Some(Object::Bundle(b)) => return Ok(b.clone()),
        Some(Object::Launch(_)) | None => {}
    }
    Err(handle_error(h, "bundle"))
}

fn launch_of(h: u64) -> Res<Arc<Mutex<Launch>>> {
    match registry().entries.get(&h).map(|e| &e.object) {
        Some(Object::Launch(l)) => return Ok(l.clone()),
        Some(Object::Bundle(_)) | None => {}
    }
    Err(handle_error(h, "launch"))
}

fn with_launch<T>(h: u64, f: impl FnOnce(&mut Launch) -> Res<T>) -> Res<T> {
    let l = launch_of(h)?;
    // A launch whose call panicked is still structurally valid (its session and report are
    // replaced whole), so keep serving it.
    let mut guard = l.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

fn insert(object: Object) -> u64 {
    let mut r = registry();
    r.next += 1;
    let h = r.next;
    r.entries.insert(
        h,
        Entry {
            object,
            last_error: String::new(),
        },
    );
    h
}

/// Copies `s` and a NUL into `buf` (`len` bytes); `*needed` (if not NULL) gets `s.len() + 1`.
/// With `buf` NULL and `len` 0 only `needed` is set.
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes; `needed` is NULL or valid.
unsafe fn copy_out(s: &str, buf: *mut c_char, len: usize, needed: *mut usize) -> Res<()> {
    let want = s.len() + 1;
    if !needed.is_null() {
        // SAFETY: the caller's contract.
        unsafe { *needed = want };
    }
    if buf.is_null() {
        return if len == 0 {
            Ok(())
        } else {
            Err(fail(TfStatus::NullArgument, "`buf` is NULL but `len` > 0"))
        };
    }
    // SAFETY: the caller's contract: `len` writable bytes at `buf`.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    if len < want {
        if let Some(n) = len.checked_sub(1) {
            out[..n].copy_from_slice(&s.as_bytes()[..n]);
            out[n] = 0;
        }
        return Err(fail(
            TfStatus::BufferTooSmall,
            format!("the buffer holds {len} bytes; {want} are needed (see `needed`)"),
        ));
    }
    out[..s.len()].copy_from_slice(s.as_bytes());
    out[s.len()] = 0;
    Ok(())
}

/// The C ABI version this library implements ([`TF_ABI_VERSION`]).
#[unsafe(no_mangle)]
pub extern "C" fn tf_abi_version() -> u32 {
    TF_ABI_VERSION
}

/// A static, NUL-terminated name of a status (`"TF_STATUS_OK"`, `"TF_STATUS_BAD_IMAGE"`, …);
/// never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn tf_status_name(status: TfStatus) -> *const c_char {
    let s: &'static CStr = match status {
        TfStatus::Ok => c"TF_STATUS_OK",
        TfStatus::NullArgument => c"TF_STATUS_NULL_ARGUMENT",
        TfStatus::InvalidArgument => c"TF_STATUS_INVALID_ARGUMENT",
        TfStatus::InvalidHandle => c"TF_STATUS_INVALID_HANDLE",
        TfStatus::BundleInvalid => c"TF_STATUS_BUNDLE_INVALID",
        TfStatus::NoVariantLoads => c"TF_STATUS_NO_VARIANT_LOADS",
        TfStatus::BadImage => c"TF_STATUS_BAD_IMAGE",
        TfStatus::BufferTooSmall => c"TF_STATUS_BUFFER_TOO_SMALL",
        TfStatus::Io => c"TF_STATUS_IO",
        TfStatus::Internal => c"TF_STATUS_INTERNAL",
    };
    s.as_ptr()
}

/// The default launch options: the bundle's budget, all cores, a watch over 5 predictions.
#[unsafe(no_mangle)]
pub extern "C" fn tf_launch_options_default() -> TfLaunchOptions {
    TfLaunchOptions {
        abi_version: TF_ABI_VERSION,
        latency_budget_ms: 0.0,
        threads: 0,
        latency_window: 5,
    }
}

/// Copies the last error message of `handle` (0: of this thread's last call that had no valid
/// handle) into `buf`, NUL-terminated and truncated to `len` bytes, and returns the full
/// length + 1 (so a return value > `len` means it was cut). An empty message means the last
/// call succeeded. `buf` may be NULL when `len` is 0 (to ask for the length).
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_last_error(handle: u64, buf: *mut c_char, len: usize) -> usize {
    let msg = catch_unwind(|| {
        let r = registry();
        match r.entries.get(&handle) {
            Some(e) => e.last_error.clone(),
            None => match r.closed.get(&handle) {
                Some(m) => m.clone(),
                None => {
                    drop(r);
                    THREAD_ERROR.with(|t| t.borrow().clone())
                }
            },
        }
    })
    .unwrap_or_default();
    let mut needed = 0;
    // SAFETY: forwarded contract. A too-small buffer is reported through the return value.
    let _ = unsafe { copy_out(&msg, buf, len, &mut needed) };
    needed
}

/// Opens the bundle in the folder `bundle_dir`: reads and validates `manifest.json` (weights
/// are read at launch). On success `*out_bundle` is a new bundle handle.
///
/// # Safety
/// `bundle_dir` is a NUL-terminated string; `out_bundle` points to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_bundle_open(
    bundle_dir: *const c_char,
    out_bundle: *mut u64,
) -> TfStatus {
    guard(0, || {
        not_null(out_bundle, "out_bundle")?;
        // SAFETY: the caller's contract.
        unsafe { *out_bundle = 0 };
        // SAFETY: the caller's contract.
        let dir = unsafe { path_arg(bundle_dir, "bundle_dir") }?;
        if dir.exists() && !dir.is_dir() {
            return Err(fail(
                TfStatus::BundleInvalid,
                format!(
                    "{}: is a file, not a bundle folder; pass the folder that holds manifest.json",
                    dir.display()
                ),
            ));
        }
        let bundle = Bundle::open(&dir).map_err(from_error)?;
        let h = insert(Object::Bundle(Arc::new(bundle)));
        // SAFETY: the caller's contract.
        unsafe { *out_bundle = h };
        Ok(())
    })
}

/// Launches an opened bundle as an app does at start-up: knows the device (cached facts in
/// `app_data_dir`, else a ≤ 20 ms probe), picks the best variant that fits (cached decision,
/// else selection), verifies and loads it (stepping down past damaged files), and caches what
/// it learnt in `app_data_dir` (created if missing; nothing else is written). `options` may be
/// NULL for the defaults. On success `*out_launch` is a new launch handle; the bundle handle
/// stays open and may be closed at once.
///
/// # Safety
/// `app_data_dir` is a NUL-terminated string; `options` is NULL or valid; `out_launch` points
/// to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_launch(
    bundle: u64,
    app_data_dir: *const c_char,
    options: *const TfLaunchOptions,
    out_launch: *mut u64,
) -> TfStatus {
    guard(bundle, || {
        not_null(out_launch, "out_launch")?;
        // SAFETY: the caller's contract.
        unsafe { *out_launch = 0 };
        // SAFETY: the caller's contract.
        let app_dir = unsafe { path_arg(app_data_dir, "app_data_dir") }?;
        let o = if options.is_null() {
            tf_launch_options_default()
        } else {
            // SAFETY: the caller's contract.
            unsafe { *options }
        };
        if o.abi_version != TF_ABI_VERSION {
            return Err(fail(
                TfStatus::InvalidArgument,
                format!(
                    "options.abi_version is {}, this library implements {TF_ABI_VERSION}; initialise the options with tf_launch_options_default()",
                    o.abi_version
                ),
            ));
        }
        let b = bundle_of(bundle)?;
        let mut opts = LaunchOptions::default();
        if o.latency_budget_ms != 0.0 {
            if !(o.latency_budget_ms.is_finite() && o.latency_budget_ms > 0.0) {
                return Err(fail(
                    TfStatus::InvalidArgument,
                    format!(
                        "options.latency_budget_ms is {}; pass a budget > 0 ms, or 0 for the bundle's default",
                        o.latency_budget_ms
                    ),
                ));
            }
            opts.policy.latency_budget_ms = Some(o.latency_budget_ms);
        }
        if o.threads > 1024 {
            return Err(fail(
                TfStatus::InvalidArgument,
                format!(
                    "options.threads is {}; pass 0 (all cores) or a count up to the device's cores",
                    o.threads
                ),
            ));
        }
        opts.threads = (o.threads > 0).then_some(o.threads as usize);
        opts.latency_window = o.latency_window as usize;
        if app_dir.exists() && !app_dir.is_dir() {
            return Err(fail(
                TfStatus::Io,
                format!(
                    "{}: app_data_dir is a file; pass the app's data folder",
                    app_dir.display()
                ),
            ));
        }
        std::fs::create_dir_all(&app_dir).map_err(|e| {
            fail(
                TfStatus::Io,
                format!(
                    "{}: cannot create the app-data folder: {e}; pass a writable folder",
                    app_dir.display()
                ),
            )
        })?;
        let launch = Launcher::new(&app_dir)
            .with_options(opts)
            .launch_bundle((*b).clone())
            .map_err(from_error)?;
        let h = insert(Object::Launch(Arc::new(Mutex::new(launch))));
        // SAFETY: the caller's contract.
        unsafe { *out_launch = h };
        Ok(())
    })
}

/// Fills `*out` with what the launch decided (see [`TfDecision`]).
///
/// # Safety
/// `out` points to a writable [`TfDecision`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_launch_decision(launch: u64, out: *mut TfDecision) -> TfStatus {
    guard(launch, || {
        not_null(out, "out")?;
        let d = with_launch(launch, |l| {
            let r = l.report();
            let loaded_fits = r.variant == r.decision.chosen && r.decision.fits;
            Ok(TfDecision {
                predicted_latency_ms: l.predicted_latency_ms(),
                cache_warm: i32::from(r.is_warm()),
                fits: i32::from(loaded_fits),
                fallbacks: r.fallback_events.len() as u32,
                latency_step_downs: r.latency_step_downs.len() as u32,
                threads: r.threads as u32,
                num_classes: l.bundle().manifest().family().labels.len() as u32,
            })
        })?;
        // SAFETY: the caller's contract.
        unsafe { *out = d };
        Ok(())
    })
}

/// Copies the id of the loaded variant (NUL-terminated) into `buf`; `*needed` (if not NULL)
/// gets the bytes needed. `buf` may be NULL with `len` 0 to ask for the size.
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes; `needed` is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_launch_variant_id(
    launch: u64,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> TfStatus {
    guard(launch, || {
        let id = with_launch(launch, |l| Ok(l.report().variant.clone()))?;
        // SAFETY: forwarded contract.
        unsafe { copy_out(&id, buf, len, needed) }
    })
}

/// Copies the full launch report as JSON (device, caches, decision with every rejected
/// variant and why, fallbacks, step-downs, timings) into `buf`, like
/// [`tf_launch_variant_id`].
///
/// # Safety
/// As [`tf_launch_variant_id`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_launch_report_json(
    launch: u64,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> TfStatus {
    guard(launch, || {
        let json = with_launch(launch, |l| {
            serde_json::to_string(l.report())
                .map_err(|e| fail(TfStatus::Internal, format!("serialising the report: {e}")))
        })?;
        // SAFETY: forwarded contract.
        unsafe { copy_out(&json, buf, len, needed) }
    })
}

/// Copies the label of class `class` into `buf`, like [`tf_launch_variant_id`].
///
/// # Safety
/// As [`tf_launch_variant_id`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_label(
    launch: u64,
    class: u32,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> TfStatus {
    guard(launch, || {
        let label = with_launch(launch, |l| {
            let labels = &l.bundle().manifest().family().labels;
            labels.get(class as usize).cloned().ok_or_else(|| {
                fail(
                    TfStatus::InvalidArgument,
                    format!(
                        "class {class} does not exist; the model has {} classes (0..{})",
                        labels.len(),
                        labels.len()
                    ),
                )
            })
        })?;
        // SAFETY: forwarded contract.
        unsafe { copy_out(&label, buf, len, needed) }
    })
}

/// Classifies one image: `pixels` is `height × width × channels` u8, interleaved (HWC, as
/// Android bitmaps and CGImage buffers hold them), of any size (the runtime resizes) and the
/// family's channel count. Writes the softmax probability of every class to `probs` (exactly
/// `num_classes` floats, see [`TfDecision`]; may be NULL with `probs_len` 0) and the top class
/// to `*top1` (may be NULL). Timed and fed to the latency watch: the launch may step down to a
/// smaller variant after its first predictions.
///
/// # Safety
/// `pixels` points to `pixels_len` readable bytes; `probs` is NULL or points to `probs_len`
/// writable floats; `top1` is NULL or valid.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tf_predict_u8(
    launch: u64,
    pixels: *const u8,
    pixels_len: usize,
    width: u32,
    height: u32,
    channels: u32,
    probs: *mut f32,
    probs_len: usize,
    top1: *mut u32,
) -> TfStatus {
    guard(launch, || {
        not_null(pixels, "pixels")?;
        if probs.is_null() && probs_len != 0 {
            return Err(fail(
                TfStatus::NullArgument,
                "`probs` is NULL but `probs_len` > 0",
            ));
        }
        if pixels_len > isize::MAX as usize {
            return Err(fail(TfStatus::BadImage, "`pixels_len` is absurd"));
        }
        // SAFETY: the caller's contract: `pixels_len` readable bytes.
        let px = unsafe { std::slice::from_raw_parts(pixels, pixels_len) };
        let image = ImageRef {
            pixels: px,
            width: width as usize,
            height: height as usize,
            channels: channels as usize,
        };
        let p = with_launch(launch, |l| {
            let classes = l.bundle().manifest().family().labels.len();
            if probs_len != 0 && probs_len != classes {
                return Err(fail(
                    TfStatus::BufferTooSmall,
                    format!(
                        "`probs_len` is {probs_len}; the model has {classes} classes: pass exactly {classes} floats (or NULL and 0)"
                    ),
                ));
            }
            l.probabilities(image).map_err(from_error)
        })?;
        if probs_len != 0 {
            // SAFETY: the caller's contract; `probs_len == p.len()` was checked.
            unsafe { std::slice::from_raw_parts_mut(probs, probs_len) }.copy_from_slice(&p);
        }
        if !top1.is_null() {
            let best = p
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
            // SAFETY: the caller's contract.
            unsafe { *top1 = best.0 as u32 };
        }
        Ok(())
    })
}

/// Feeds a latency the app measured itself (ms, ≥ 0) to the launch's latency watch; when the
/// median of the first predictions is over budget the launch steps down to the next smaller
/// variant (loaded now and persisted for the next launch). `*stepped_down` (if not NULL) is 1
/// when this call stepped down.
///
/// # Safety
/// `stepped_down` is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tf_report_latency(
    launch: u64,
    latency_ms: f64,
    stepped_down: *mut i32,
) -> TfStatus {
    guard(launch, || {
        let down = with_launch(launch, |l| l.report_latency(latency_ms).map_err(from_error))?;
        if !stepped_down.is_null() {
            // SAFETY: the caller's contract.
            unsafe { *stepped_down = i32::from(down) };
        }
        Ok(())
    })
}

/// Closes a bundle or launch handle and frees what it holds. A closed handle is invalid for
/// every later call (an error, not a crash); closing it again is [`TfStatus::InvalidHandle`].
#[unsafe(no_mangle)]
pub extern "C" fn tf_close(handle: u64) -> TfStatus {
    guard(0, || {
        let mut r = registry();
        match r.entries.remove(&handle) {
            Some(e) => {
                if r.closed.len() >= 4096 {
                    r.closed.clear();
                }
                r.closed.insert(handle, e.last_error);
                drop(r);
                drop(e.object);
                Ok(())
            }
            None => {
                drop(r);
                Err(handle_error(handle, "bundle or launch"))
            }
        }
    })
}
