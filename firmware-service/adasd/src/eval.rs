//! `adasd eval`: the detector over a COCO-annotated image set, written in the COCO *results*
//! format, so that accuracy is measured by the official evaluator (pycocotools, see
//! tests/eval/coco_map.py) exactly as papers measure it, and compared with the frameworks the
//! models come from on the same images.
//!
//! Only what the results need is read from the annotation file (image ids, file names and sizes,
//! category ids and names); the ground truth itself stays with the evaluator.

use adas_detect::{Detector, ImageDetection};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The parts of a COCO instances file the results need.
#[derive(Debug, Deserialize)]
pub struct Annotations {
    pub images: Vec<AnnotatedImage>,
    pub categories: Vec<Category>,
}

#[derive(Debug, Deserialize)]
pub struct AnnotatedImage {
    pub id: u64,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Deserialize)]
pub struct Category {
    pub id: u64,
    pub name: String,
}

/// One line of the COCO results format; `bbox` is `[x, y, width, height]` in original-image
/// pixels, x/y the top-left corner. f32 keeps the file small: serde_json writes the shortest
/// text that reads back as the same f32, so nothing the detector computed is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoResult {
    pub image_id: u64,
    pub category_id: u64,
    pub bbox: [f32; 4],
    pub score: f32,
}

/// What one `adasd eval` run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub images: usize,
    pub written: usize,
    /// Detections whose label is no category of the annotation file, per label.
    pub dropped: BTreeMap<String, usize>,
    pub seconds: f64,
}

impl Summary {
    pub fn dropped_total(&self) -> usize {
        self.dropped.values().sum()
    }
}

impl Annotations {
    pub fn load(path: &Path) -> anyhow::Result<Annotations> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read annotations {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a COCO instances file", path.display()))
    }

    /// Category id per model label name. A model whose labels match no category at all is
    /// evaluated against the wrong label space (or a wrong file): refused, as every score would
    /// silently be zero.
    pub fn category_ids(
        &self,
        labels: &[String],
        annotations_path: &Path,
        model: &str,
    ) -> anyhow::Result<HashMap<String, u64>> {
        let by_name: HashMap<&str, u64> = self
            .categories
            .iter()
            .map(|c| (c.name.as_str(), c.id))
            .collect();
        let ids: HashMap<String, u64> = labels
            .iter()
            .filter_map(|l| by_name.get(l.as_str()).map(|&id| (l.clone(), id)))
            .collect();
        if ids.is_empty() {
            bail!(
                "no label of model {model} is a category of {} (categories e.g. {})",
                annotations_path.display(),
                self.categories
                    .iter()
                    .take(5)
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(ids)
    }
}

/// Detections of one image → results; labels without a category are counted in `dropped`.
pub fn to_results(
    image_id: u64,
    detections: &[ImageDetection],
    category_ids: &HashMap<String, u64>,
    dropped: &mut BTreeMap<String, usize>,
) -> Vec<CocoResult> {
    let mut out = Vec::with_capacity(detections.len());
    for d in detections {
        let Some(&category_id) = category_ids.get(&d.label) else {
            *dropped.entry(d.label.clone()).or_default() += 1;
            continue;
        };
        let b = d.bbox;
        out.push(CocoResult {
            image_id,
            category_id,
            bbox: [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
            score: d.score,
        });
    }
    out
}

/// Runs `detector` on every image of `annotations` (files under `images`) and writes the
/// results to `out`. Any image that is missing, unreadable or not the size the annotation file
/// says is an error: a partial result set would score as a worse detector, not as a failure.
pub fn run(
    detector: &mut Detector,
    annotations_path: &Path,
    images: &Path,
    out: &Path,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let annotations = Annotations::load(annotations_path)?;
    let category_ids = annotations.category_ids(
        &detector.manifest().labels,
        annotations_path,
        &detector.manifest().name,
    )?;
    let mut summary = Summary::default();
    let mut results = Vec::new();
    for entry in &annotations.images {
        let path: PathBuf = images.join(&entry.file_name);
        let img = adas_io::decode::open(&path)
            .map_err(|e| {
                anyhow::anyhow!("{e} (image {} of {})", entry.id, annotations_path.display())
            })?
            .to_rgb8();
        let (w, h) = img.dimensions();
        if (w, h) != (entry.width, entry.height) {
            bail!(
                "image {} is {w}×{h} but {} says {}×{}",
                path.display(),
                annotations_path.display(),
                entry.width,
                entry.height
            );
        }
        let (detections, _) = detector
            .detect(img.as_raw(), w as usize, h as usize)
            .with_context(|| format!("detecting in {}", path.display()))?;
        results.extend(to_results(
            entry.id,
            &detections,
            &category_ids,
            &mut summary.dropped,
        ));
        summary.images += 1;
    }
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut writer, &results)
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::io::Write::flush(&mut writer)
        .with_context(|| format!("cannot write {}", out.display()))?;
    summary.written = results.len();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use adas_plugins::manifest::RoadUser;
    use adas_plugins::BBox;

    fn annotations() -> Annotations {
        serde_json::from_str(
            r#"{"images": [{"id": 7, "file_name": "a.jpg", "width": 10, "height": 8, "license": 1}],
                "annotations": [],
                "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                               {"id": 3, "name": "car", "supercategory": "vehicle"}]}"#,
        )
        .unwrap()
    }

    fn det(label: &str, score: f32) -> ImageDetection {
        ImageDetection {
            bbox: BBox::new(1.0, 2.0, 4.5, 8.0),
            score,
            label: label.into(),
            class: RoadUser::Other,
        }
    }

    #[test]
    fn labels_map_to_category_ids_by_name_and_others_are_counted() {
        let labels: Vec<String> = ["person", "N/A", "car"].map(String::from).to_vec();
        let ids = annotations()
            .category_ids(&labels, Path::new("a.json"), "m")
            .unwrap();
        assert_eq!(ids.len(), 2);
        let mut dropped = BTreeMap::new();
        let r = to_results(
            7,
            &[det("car", 0.9), det("N/A", 0.5), det("person", 0.25)],
            &ids,
            &mut dropped,
        );
        assert_eq!(
            r,
            vec![
                CocoResult {
                    image_id: 7,
                    category_id: 3,
                    bbox: [1.0, 2.0, 3.5, 6.0],
                    score: 0.9
                },
                CocoResult {
                    image_id: 7,
                    category_id: 1,
                    bbox: [1.0, 2.0, 3.5, 6.0],
                    score: 0.25
                },
            ]
        );
        assert_eq!(dropped.get("N/A"), Some(&1));
    }

    #[test]
    fn a_model_with_no_matching_label_is_refused_naming_the_file() {
        let labels = vec!["pedestrian".to_string()];
        let e = annotations()
            .category_ids(&labels, Path::new("x/instances.json"), "ped")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x/instances.json") && e.contains("ped"), "{e}");
    }

    #[test]
    fn results_serialise_as_coco_results() {
        let r = CocoResult {
            image_id: 1,
            category_id: 2,
            bbox: [0.5, 1.0, 2.25, 3.0],
            score: 0.1,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"image_id":1,"category_id":2,"bbox":[0.5,1.0,2.25,3.0],"score":0.1}"#
        );
    }
}
