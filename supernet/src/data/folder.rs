//! ImageFolder trees: one sub-folder per class with PNG/JPEG images, either at the root or
//! under `train/` and `test/` (or `val/`).

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE};
use super::read::{MAX_DATA_FILE_BYTES, open_regular};
use crate::error::{Error, Result};

/// Decodes one image file with bounded sides and memory, rejecting images smaller than
/// [`MIN_IMAGE_SIDE`] (each error names the file).
fn decode(f: &Path) -> Result<image::DynamicImage> {
    let (file, _) = open_regular(f)?;
    let mut reader = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| Error::io(f, e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE as u32);
    limits.max_image_height = Some(MAX_IMAGE_SIDE as u32);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        Error::data(
            f,
            format!(
                "cannot decode image: {e} (images must be PNG or JPEG of at most \
                 {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} pixels)"
            ),
        )
    })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < MIN_IMAGE_SIDE || h < MIN_IMAGE_SIDE {
        return Err(Error::data(
            f,
            format!(
                "a {w}×{h} image: images must be at least {MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE} \
                 pixels; remove it or replace it with a larger one"
            ),
        ));
    }
    Ok(img)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// Loads one tree of class folders. Images are converted to grayscale when every image of the
/// first class is grayscale, else to RGB, and resized to the first image's size when they differ.
///
/// # Errors
/// No class folders, an empty class folder, an undecodable image, one that is not a regular
/// file, or one smaller than [`MIN_IMAGE_SIDE`] or larger than [`MAX_IMAGE_SIDE`] (each named).
pub fn load_tree(dir: &Path, class_names: Option<&[String]>) -> Result<Dataset> {
    let classes = sorted_dirs(dir)?;
    if classes.len() < 2 {
        return Err(Error::data(
            dir,
            format!(
                "an ImageFolder needs at least 2 class folders, found {}",
                classes.len()
            ),
        ));
    }
    let names: Vec<String> = classes
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if let Some(want) = class_names {
        if want != names.as_slice() {
            return Err(Error::data(
                dir,
                format!("class folders {names:?} differ from the training set's {want:?}"),
            ));
        }
    }
    let mut ds: Option<Dataset> = None;
    for (label, cdir) in classes.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(cdir)
            .map_err(|e| Error::io(cdir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| is_image(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::data(
                cdir,
                "empty class folder: it holds no .png/.jpg/.jpeg image; add images or remove the folder",
            ));
        }
        for f in files {
            let img = decode(&f)?;
            let d = ds.get_or_insert_with(|| {
                let gray = matches!(
                    img.color(),
                    image::ColorType::L8 | image::ColorType::L16 | image::ColorType::La8
                );
                Dataset {
                    images: vec![],
                    labels: vec![],
                    channels: if gray { 1 } else { 3 },
                    height: img.height() as usize,
                    width: img.width() as usize,
                    class_names: names.clone(),
                }
            });
            let img = if img.width() as usize != d.width || img.height() as usize != d.height {
                img.resize_exact(
                    d.width as u32,
                    d.height as u32,
                    image::imageops::FilterType::Triangle,
                )
            } else {
                img
            };
            if d.channels == 1 {
                d.images.extend_from_slice(img.to_luma8().as_raw());
            } else {
                let rgb = img.to_rgb8();
                let (w, h) = (d.width, d.height);
                let raw = rgb.as_raw();
                for c in 0..3 {
                    for i in 0..w * h {
                        d.images.push(raw[i * 3 + c]);
                    }
                }
            }
            d.labels.push(label as u16);
            if d.images.len() as u64 > MAX_DATA_FILE_BYTES {
                return Err(Error::data(
                    dir,
                    format!(
                        "more than {MAX_DATA_FILE_BYTES} bytes of pixels at {}: the dataset is too \
                         large to hold in memory; use fewer or smaller images",
                        f.display()
                    ),
                ));
            }
        }
    }
    ds.ok_or_else(|| Error::data(dir, "no images"))
}

/// Loads an ImageFolder dataset: `dir/train` + `dir/test` (or `dir/val`) when present, else the
/// class folders directly under `dir` (the caller then splits off a test set).
///
/// # Errors
/// See [`load_tree`].
pub fn load_image_folder(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    let train_dir = dir.join("train");
    if train_dir.is_dir() {
        let train = load_tree(&train_dir, None)?;
        for t in ["test", "val"] {
            let td = dir.join(t);
            if td.is_dir() {
                let mut test = load_tree(&td, Some(&train.class_names))?;
                if (test.channels, test.height, test.width)
                    != (train.channels, train.height, train.width)
                {
                    return Err(Error::data(
                        td,
                        "test images differ from training images in channels or size",
                    ));
                }
                test.class_names = train.class_names.clone();
                return Ok((train, Some(test)));
            }
        }
        return Ok((train, None));
    }
    Ok((load_tree(dir, None)?, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_pngs_and_rejects_empty_class() {
        let dir = tempfile::tempdir().unwrap();
        for (ci, c) in ["cat", "dog"].iter().enumerate() {
            std::fs::create_dir_all(dir.path().join(c)).unwrap();
            for i in 0..3u8 {
                let img = image::GrayImage::from_pixel(8, 8, image::Luma([ci as u8 * 100 + i]));
                img.save(dir.path().join(c).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let (ds, test) = load_image_folder(dir.path()).unwrap();
        assert_eq!((ds.len(), ds.channels, ds.height), (6, 1, 8));
        assert_eq!(ds.class_names, vec!["cat", "dog"]);
        assert_eq!(ds.image(4)[0], 101);
        assert!(test.is_none());
        std::fs::create_dir_all(dir.path().join("emu")).unwrap();
        let e = load_image_folder(dir.path()).unwrap_err().to_string();
        assert!(e.contains("emu") && e.contains("empty class folder"), "{e}");
    }

    #[test]
    fn tiny_huge_and_fake_images_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for c in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(c)).unwrap();
            for i in 0..2u8 {
                image::GrayImage::from_pixel(9, 9, image::Luma([i]))
                    .save(dir.path().join(c).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let tiny = dir.path().join("a/00-tiny.png");
        image::GrayImage::from_pixel(1, 1, image::Luma([3]))
            .save(&tiny)
            .unwrap();
        let e = load_image_folder(dir.path()).unwrap_err().to_string();
        assert!(e.contains("00-tiny.png") && e.contains("1×1"), "{e}");
        std::fs::write(&tiny, b"not a png").unwrap();
        let e = load_image_folder(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("00-tiny.png") && e.contains("cannot decode"),
            "{e}"
        );
        std::fs::remove_file(&tiny).unwrap();
        std::fs::create_dir(&tiny).unwrap();
        let e = load_image_folder(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("00-tiny.png") && e.contains("not a regular file"),
            "{e}"
        );
    }
}
