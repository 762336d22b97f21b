//! Packed RGB frames (already at the model's size, from the pipeline) → one NCHW f32 tensor
//! normalised to 0..1, written into a buffer allocated once for the largest batch.

/// A frame could not be placed in the batch tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    #[error("frame is {width}x{height}, the model takes {want_width}x{want_height}")]
    Size {
        width: u32,
        height: u32,
        want_width: u32,
        want_height: u32,
    },
    #[error("frame buffer of {len} bytes is too small for {height} rows of stride {stride}")]
    Buffer {
        len: usize,
        stride: usize,
        height: u32,
    },
    #[error("batch slot {slot} is beyond the batch size {max_batch}")]
    Slot { slot: usize, max_batch: usize },
}

/// The batch tensor `[max_batch, 3, height, width]`, reused for every batch.
#[derive(Debug)]
pub struct Preprocessor {
    width: u32,
    height: u32,
    max_batch: usize,
    tensor: Vec<f32>,
}

const INV_255: f32 = 1.0 / 255.0;

impl Preprocessor {
    pub fn new(width: u32, height: u32, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        Self {
            width,
            height,
            max_batch,
            tensor: vec![0.0; max_batch * 3 * width as usize * height as usize],
        }
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn image_len(&self) -> usize {
        3 * self.width as usize * self.height as usize
    }

    /// Writes one packed-RGB frame (`stride` bytes per row, rows may be padded) into batch
    /// slot `slot` as three planes of `value / 255`.
    pub fn fill(
        &mut self,
        slot: usize,
        width: u32,
        height: u32,
        stride: usize,
        rgb: &[u8],
    ) -> Result<(), PreprocessError> {
        if slot >= self.max_batch {
            return Err(PreprocessError::Slot {
                slot,
                max_batch: self.max_batch,
            });
        }
        if (width, height) != (self.width, self.height) {
            return Err(PreprocessError::Size {
                width,
                height,
                want_width: self.width,
                want_height: self.height,
            });
        }
        let (w, h) = (width as usize, height as usize);
        let row_bytes = 3 * w;
        if stride < row_bytes || h > 0 && rgb.len() < stride * (h - 1) + row_bytes {
            return Err(PreprocessError::Buffer {
                len: rgb.len(),
                stride,
                height,
            });
        }
        let plane = w * h;
        let image_len = self.image_len();
        let image = &mut self.tensor[slot * image_len..(slot + 1) * image_len];
        let (red, rest) = image.split_at_mut(plane);
        let (green, blue) = rest.split_at_mut(plane);
        for y in 0..h {
            let row = &rgb[y * stride..y * stride + row_bytes];
            let out = y * w..(y + 1) * w;
            for (((px, r), g), b) in row
                .chunks_exact(3)
                .zip(&mut red[out.clone()])
                .zip(&mut green[out.clone()])
                .zip(&mut blue[out])
            {
                *r = f32::from(px[0]) * INV_255;
                *g = f32::from(px[1]) * INV_255;
                *b = f32::from(px[2]) * INV_255;
            }
        }
        Ok(())
    }

    /// The first `batch` images of the tensor and their shape `[batch, 3, H, W]`.
    pub fn batch(&self, batch: usize) -> ([usize; 4], &[f32]) {
        let batch = batch.min(self.max_batch);
        (
            [batch, 3, self.height as usize, self.width as usize],
            &self.tensor[..batch * self.image_len()],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rgb_with_padded_rows_becomes_normalised_planes() {
        // 2x2 image, stride 8 (6 bytes of pixels + 2 bytes of row padding, as GStreamer pads).
        let rgb = [
            255, 0, 0, /**/ 0, 255, 0, /**/ 9, 9, //
            0, 0, 255, /**/ 51, 102, 153, /**/ 9, 9,
        ];
        let mut p = Preprocessor::new(2, 2, 2);
        p.fill(1, 2, 2, 8, &rgb).expect("fits");
        let (shape, data) = p.batch(2);
        assert_eq!(shape, [2, 3, 2, 2]);
        assert_eq!(&data[..12], &[0.0; 12], "slot 0 untouched");
        let want = [
            1.0, 0.0, 0.0, 0.2, // red plane
            0.0, 1.0, 0.0, 0.4, // green plane
            0.0, 0.0, 1.0, 0.6, // blue plane
        ];
        for (i, (got, want)) in data[12..].iter().zip(want).enumerate() {
            assert!((got - want).abs() < 1e-6, "value {i}: {got} != {want}");
        }
    }

    #[test]
    fn the_last_row_needs_no_padding() {
        let rgb = [1u8; 8 + 6];
        let mut p = Preprocessor::new(2, 2, 1);
        assert_eq!(p.fill(0, 2, 2, 8, &rgb), Ok(()));
        assert!(p.fill(0, 2, 2, 8, &rgb[..13]).is_err());
    }

    #[test]
    fn a_frame_of_another_size_is_refused() {
        let mut p = Preprocessor::new(4, 4, 1);
        assert_eq!(
            p.fill(0, 2, 2, 6, &[0; 12]),
            Err(PreprocessError::Size {
                width: 2,
                height: 2,
                want_width: 4,
                want_height: 4
            })
        );
    }

    #[test]
    fn a_stride_shorter_than_a_row_or_a_slot_past_the_batch_is_refused() {
        let mut p = Preprocessor::new(2, 2, 1);
        assert!(matches!(
            p.fill(0, 2, 2, 5, &[0; 12]),
            Err(PreprocessError::Buffer { .. })
        ));
        assert!(matches!(
            p.fill(1, 2, 2, 6, &[0; 12]),
            Err(PreprocessError::Slot { .. })
        ));
    }
}
