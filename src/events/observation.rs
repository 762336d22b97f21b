//! A detection event as an [`Observation`] for the appeal registry: the camera's place, the
//! event's category, an idempotency key per event, and the evidence by reference.

use crate::domain::{DetectionEvent, EvidenceRef, Observation, Source};

/// Placement uncertainty of a camera observation without calibration (metres).
const CAMERA_UNCERTAINTY_M: f64 = 50.0;

pub fn to_observation(event: &DetectionEvent) -> Observation {
    let data = serde_json::json!({
        "class": &*event.class,
        "score": event.score,
        "bbox": [event.bbox.x1, event.bbox.y1, event.bbox.x2, event.bbox.y2],
        "model": { "name": event.model.name, "version": event.model.version },
        "threshold": event.threshold,
        "track": event.track,
        "zone": event.zone,
    });
    let mut evidence = Vec::new();
    if let Some(e) = &event.evidence {
        let mut data = data.clone();
        let lb = &e.letterbox;
        data["letterbox"] = serde_json::json!({
            "source_width": lb.source_width,
            "source_height": lb.source_height,
            "scale": lb.scale,
            "pad_x": lb.pad_x,
            "pad_y": lb.pad_y,
        });
        evidence.push(EvidenceRef {
            kind: "image".to_owned(),
            uri: Some(format!("file://{}", e.annotated_path.display())),
            data: Some(data),
        });
        evidence.push(EvidenceRef {
            kind: "image".to_owned(),
            uri: Some(format!("file://{}", e.clean_path.display())),
            data: None,
        });
    } else {
        evidence.push(EvidenceRef {
            kind: "note".to_owned(),
            uri: None,
            data: Some(data),
        });
    }
    Observation {
        category: event.category.clone(),
        source: Source::Camera,
        source_ref: format!("camera:{}:event:{}", event.camera.as_str(), event.id),
        position: event.position,
        uncertainty_m: Some(CAMERA_UNCERTAINTY_M),
        address: Some(event.address.clone()),
        description: Some(format!(
            "{} detected by camera {} ({} {:.2}, model {} {})",
            event.class,
            event.camera.as_str(),
            event.kind.as_str(),
            event.score,
            event.model.name,
            event.model.version
        )),
        actor: event.camera.as_str().to_owned(),
        observed_at: event.at.into(),
        evidence,
    }
}
