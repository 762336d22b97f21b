//! Image → ground-plane mapping for one camera.
//!
//! A planar homography estimated by the normalised direct linear transform (Hartley &
//! Zisserman, alg. 4.2) from ≥ 4 image↔map pairs, least squares when more are given. The map side
//! is projected to local metres first so the fit is well conditioned. Written here (an 8×8 solve)
//! rather than pulling OpenCV's calib3d or nalgebra: see docs/registry.md "Homography".
//!
//! Without calibration a detection is placed in front of the camera along its heading, with a
//! wide uncertainty ([`GroundEstimate::uncertainty_m`]).

use serde::Serialize;

use super::GeoError;
use super::projection::LocalProjection;
use crate::domain::Position;

/// Distance in front of an uncalibrated camera where a detection is assumed to lie.
pub const POSE_ASSUMED_RANGE_M: f64 = 20.0;
/// Uncertainty of a placement from camera position + heading.
pub const POSE_UNCERTAINTY_M: f64 = 35.0;
/// Uncertainty of a placement at the camera itself (no heading known).
pub const POSITION_ONLY_UNCERTAINTY_M: f64 = 60.0;
/// Floor on a calibrated projection's uncertainty (calibration pairs are not survey-grade).
pub const MIN_CALIBRATED_UNCERTAINTY_M: f64 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementMethod {
    Homography,
    CameraHeading,
    CameraPosition,
}

/// Where a detection is on the ground, and how sure we are.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GroundEstimate {
    pub position: Position,
    pub uncertainty_m: f64,
    pub method: PlacementMethod,
}

/// A fitted image → map homography.
#[derive(Clone, Debug, PartialEq)]
pub struct Homography {
    /// Row-major 3×3 from image pixels to local metres.
    h: [f64; 9],
    projection: LocalProjection,
    /// Sign of w at the calibration points: image points with the other sign are above the horizon.
    w_sign: f64,
    /// RMS reprojection error over the calibration pairs, metres.
    rms_error_m: f64,
}

/// Similarity transform (translate, isotropic scale) putting points around 0 at mean distance √2.
fn normaliser(points: &[[f64; 2]]) -> [f64; 3] {
    let n = points.len() as f64;
    let cx = points.iter().map(|p| p[0]).sum::<f64>() / n;
    let cy = points.iter().map(|p| p[1]).sum::<f64>() / n;
    let mean = points
        .iter()
        .map(|p| ((p[0] - cx).powi(2) + (p[1] - cy).powi(2)).sqrt())
        .sum::<f64>()
        / n;
    let s = if mean > 0.0 {
        std::f64::consts::SQRT_2 / mean
    } else {
        1.0
    };
    [s, cx, cy]
}

fn apply(t: [f64; 3], p: [f64; 2]) -> [f64; 2] {
    [t[0] * (p[0] - t[1]), t[0] * (p[1] - t[2])]
}

/// Solve the square system `a x = b` (n ≤ 8) by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-10 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..N {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (cell, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *cell -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let s: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

impl Homography {
    /// Fit from pairs of (image `[x, y]` pixels, map `[lat, lon]` degrees).
    pub fn from_pairs(pairs: &[([f64; 2], [f64; 2])]) -> Result<Self, GeoError> {
        if pairs.len() < 4 {
            return Err(GeoError::TooFewPairs(pairs.len()));
        }
        for (i, (img, map)) in pairs.iter().enumerate() {
            let ok = img.iter().all(|v| v.is_finite()) && Position::new(map[0], map[1]).is_valid();
            if !ok {
                return Err(GeoError::BadPair(i));
            }
        }
        let n = pairs.len() as f64;
        let origin = Position::new(
            pairs.iter().map(|p| p.1[0]).sum::<f64>() / n,
            pairs.iter().map(|p| p.1[1]).sum::<f64>() / n,
        );
        let projection = LocalProjection::new(origin);
        let src: Vec<[f64; 2]> = pairs.iter().map(|p| p.0).collect();
        let dst: Vec<[f64; 2]> = pairs
            .iter()
            .map(|p| projection.to_xy(Position::new(p.1[0], p.1[1])))
            .collect();
        let (ts, td) = (normaliser(&src), normaliser(&dst));
        // Normal equations for h (h33 = 1) in normalised coordinates.
        let mut ata = [[0.0; 8]; 8];
        let mut atb = [0.0; 8];
        for (s, d) in src.iter().zip(&dst) {
            let [x, y] = apply(ts, *s);
            let [u, v] = apply(td, *d);
            let rows = [
                ([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u),
                ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v),
            ];
            for (r, rhs) in rows {
                for i in 0..8 {
                    for j in 0..8 {
                        ata[i][j] += r[i] * r[j];
                    }
                    atb[i] += r[i] * rhs;
                }
            }
        }
        let hn = solve(ata, atb).ok_or(GeoError::Degenerate)?;
        // Denormalise: H = Td⁻¹ · Hn · Ts.
        let hn = [hn[0], hn[1], hn[2], hn[3], hn[4], hn[5], hn[6], hn[7], 1.0];
        let ts_m = [
            ts[0],
            0.0,
            -ts[0] * ts[1],
            0.0,
            ts[0],
            -ts[0] * ts[2],
            0.0,
            0.0,
            1.0,
        ];
        let td_inv = [
            1.0 / td[0],
            0.0,
            td[1],
            0.0,
            1.0 / td[0],
            td[2],
            0.0,
            0.0,
            1.0,
        ];
        let h = mul(&td_inv, &mul(&hn, &ts_m));
        let mut fitted = Self {
            h,
            projection,
            w_sign: 1.0,
            rms_error_m: 0.0,
        };
        let ws: Vec<f64> = src.iter().map(|s| fitted.w(*s)).collect();
        let positive = ws.iter().filter(|w| **w > 0.0).count();
        if positive != 0 && positive != ws.len() {
            // The calibration points straddle the horizon line: not a ground plane.
            return Err(GeoError::Degenerate);
        }
        fitted.w_sign = if positive == 0 { -1.0 } else { 1.0 };
        let mut sq = 0.0;
        for (s, d) in src.iter().zip(&dst) {
            let p = fitted.to_xy(*s).ok_or(GeoError::Degenerate)?;
            sq += (p[0] - d[0]).powi(2) + (p[1] - d[1]).powi(2);
        }
        fitted.rms_error_m = (sq / n).sqrt();
        Ok(fitted)
    }

    fn w(&self, p: [f64; 2]) -> f64 {
        self.h[6] * p[0] + self.h[7] * p[1] + self.h[8]
    }

    fn to_xy(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let w = self.w(p);
        if w.is_nan() || w * self.w_sign <= 1e-12 {
            return None;
        }
        let x = (self.h[0] * p[0] + self.h[1] * p[1] + self.h[2]) / w;
        let y = (self.h[3] * p[0] + self.h[4] * p[1] + self.h[5]) / w;
        (x.is_finite() && y.is_finite()).then_some([x, y])
    }

    /// Map an image point (pixels) to the ground; `None` above the horizon.
    pub fn project(&self, image_xy: [f64; 2]) -> Option<Position> {
        self.to_xy(image_xy)
            .map(|xy| self.projection.to_position(xy))
    }

    /// RMS reprojection error of the calibration pairs, metres.
    pub fn rms_error_m(&self) -> f64 {
        self.rms_error_m
    }
}

fn mul(a: &[f64; 9], b: &[f64; 9]) -> [f64; 9] {
    let mut out = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            out[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
        }
    }
    out
}

/// How one camera maps detections to the ground.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraPlacement {
    pub position: Position,
    pub heading_deg: Option<f64>,
    pub homography: Option<Homography>,
}

impl CameraPlacement {
    /// Placement of a camera from its layer record and its config's `calibration` pairs
    /// (`(image [x, y], map [lat, lon])`); no pairs = uncalibrated.
    pub fn for_camera(
        camera: &super::Camera,
        calibration: &[([f64; 2], [f64; 2])],
    ) -> Result<Self, GeoError> {
        let homography = if calibration.is_empty() {
            None
        } else {
            Some(Homography::from_pairs(calibration)?)
        };
        Ok(Self {
            position: camera.position,
            heading_deg: camera.heading_deg,
            homography,
        })
    }

    /// Ground position of the image point `image_xy` (e.g. the bottom centre of a box).
    pub fn locate(&self, image_xy: [f64; 2]) -> GroundEstimate {
        if let Some(position) = self.homography.as_ref().and_then(|h| h.project(image_xy)) {
            let rms = self
                .homography
                .as_ref()
                .map_or(0.0, Homography::rms_error_m);
            return GroundEstimate {
                position,
                uncertainty_m: (3.0 * rms).max(MIN_CALIBRATED_UNCERTAINTY_M),
                method: PlacementMethod::Homography,
            };
        }
        match self.heading_deg {
            Some(heading) => {
                let proj = LocalProjection::new(self.position);
                let a = heading.to_radians();
                let xy = [
                    POSE_ASSUMED_RANGE_M * a.sin(),
                    POSE_ASSUMED_RANGE_M * a.cos(),
                ];
                GroundEstimate {
                    position: proj.to_position(xy),
                    uncertainty_m: POSE_UNCERTAINTY_M,
                    method: PlacementMethod::CameraHeading,
                }
            }
            None => GroundEstimate {
                position: self.position,
                uncertainty_m: POSITION_ONLY_UNCERTAINTY_M,
                method: PlacementMethod::CameraPosition,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic ground-truth homography (a tilted camera looking at the ground).
    fn truth(p: [f64; 2]) -> [f64; 2] {
        let h = [0.05, 0.01, -20.0, 0.002, -0.09, 60.0, 0.00001, 0.0009, 1.0];
        let w = h[6] * p[0] + h[7] * p[1] + h[8];
        [
            (h[0] * p[0] + h[1] * p[1] + h[2]) / w,
            (h[3] * p[0] + h[4] * p[1] + h[5]) / w,
        ]
    }

    type Pairs = Vec<([f64; 2], [f64; 2])>;

    fn pairs(image: &[[f64; 2]]) -> (LocalProjection, Pairs) {
        let proj = LocalProjection::new(Position::new(51.128, 71.430));
        let pairs = image
            .iter()
            .map(|p| {
                let pos = proj.to_position(truth(*p));
                (*p, [pos.lat, pos.lon])
            })
            .collect();
        (proj, pairs)
    }

    #[test]
    fn four_exact_pairs_recover_the_mapping_at_other_pixels() {
        let (proj, pairs) = pairs(&[
            [100.0, 700.0],
            [1800.0, 690.0],
            [1500.0, 300.0],
            [300.0, 320.0],
        ]);
        let h = Homography::from_pairs(&pairs).expect("fit");
        assert!(h.rms_error_m() < 1e-6);
        for p in [[960.0, 540.0], [200.0, 650.0], [1700.0, 400.0]] {
            let got = h.project(p).expect("below horizon");
            let want = proj.to_position(truth(p));
            assert!(got.distance_m(&want) < 0.01, "{p:?}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn more_pairs_with_noise_fit_by_least_squares() {
        let image: Vec<[f64; 2]> = (0..12)
            .map(|i| {
                [
                    150.0 * i as f64 + 50.0,
                    300.0 + 35.0 * i as f64 + (i % 3) as f64 * 60.0,
                ]
            })
            .collect();
        let (proj, mut pairs) = pairs(&image);
        for (i, p) in pairs.iter_mut().enumerate() {
            p.1[0] += if i % 2 == 0 { 1e-6 } else { -1e-6 };
        }
        let h = Homography::from_pairs(&pairs).expect("fit");
        assert!(h.rms_error_m() < 0.5, "{}", h.rms_error_m());
        let got = h.project([900.0, 500.0]).expect("ground");
        assert!(got.distance_m(&proj.to_position(truth([900.0, 500.0]))) < 0.5);
    }

    #[test]
    fn collinear_or_too_few_pairs_are_refused() {
        let (_, few) = pairs(&[[0.0, 500.0], [100.0, 500.0], [200.0, 600.0]]);
        assert!(matches!(
            Homography::from_pairs(&few),
            Err(GeoError::TooFewPairs(3))
        ));
        let (_, line) = pairs(&[[0.0, 500.0], [100.0, 510.0], [200.0, 520.0], [300.0, 530.0]]);
        assert!(matches!(
            Homography::from_pairs(&line),
            Err(GeoError::Degenerate)
        ));
        let bad = vec![([0.0, 0.0], [95.0, 71.0]); 4];
        assert!(matches!(
            Homography::from_pairs(&bad),
            Err(GeoError::BadPair(0))
        ));
    }

    #[test]
    fn a_camera_with_calibration_pairs_projects_through_its_homography() {
        let (proj, pairs) = pairs(&[
            [100.0, 700.0],
            [1800.0, 690.0],
            [1500.0, 300.0],
            [300.0, 320.0],
        ]);
        let camera = super::super::Camera {
            id: "ast-0001".into(),
            name: "test".into(),
            position: proj.origin(),
            heading_deg: Some(10.0),
        };
        let placed = CameraPlacement::for_camera(&camera, &pairs).expect("calibrated");
        let est = placed.locate([960.0, 540.0]);
        assert_eq!(est.method, PlacementMethod::Homography);
        assert_eq!(est.uncertainty_m, MIN_CALIBRATED_UNCERTAINTY_M);
        assert!(
            est.position
                .distance_m(&proj.to_position(truth([960.0, 540.0])))
                < 0.01
        );
        let bare = CameraPlacement::for_camera(&camera, &[]).expect("uncalibrated");
        assert_eq!(
            bare.locate([960.0, 540.0]).method,
            PlacementMethod::CameraHeading
        );
        assert!(CameraPlacement::for_camera(&camera, &pairs[..3]).is_err());
    }

    #[test]
    fn an_uncalibrated_camera_places_detections_ahead_along_its_heading_with_wide_uncertainty() {
        let cam = Position::new(51.128, 71.430);
        let east = CameraPlacement {
            position: cam,
            heading_deg: Some(90.0),
            homography: None,
        }
        .locate([10.0, 10.0]);
        assert_eq!(east.method, PlacementMethod::CameraHeading);
        assert!(east.position.lon > cam.lon && (east.position.lat - cam.lat).abs() < 1e-6);
        assert!((east.position.distance_m(&cam) - POSE_ASSUMED_RANGE_M).abs() < 0.1);
        assert_eq!(east.uncertainty_m, POSE_UNCERTAINTY_M);
        let blind = CameraPlacement {
            position: cam,
            heading_deg: None,
            homography: None,
        }
        .locate([10.0, 10.0]);
        assert_eq!(blind.position, cam);
        assert_eq!(blind.uncertainty_m, POSITION_ONLY_UNCERTAINTY_M);
    }
}
