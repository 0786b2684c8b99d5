//! [`Embedding`]: a finite, L2-normalized vector, and its on-disk BLOB layout.

use crate::{Error, Result};

/// A finite, non-zero vector scaled to unit length.
///
/// Construction is the only place vectors are checked: empty vectors, NaN, infinity and the
/// zero vector are refused, everything else is normalized (in f64, then stored as f32). Every
/// vector the store holds is an `Embedding`, so cosine similarity is a plain dot product.
///
/// ```
/// use reasonbank_memory::Embedding;
/// let e = Embedding::new(vec![3.0, 4.0]).unwrap();
/// assert_eq!(e.as_slice(), &[0.6, 0.8]);
/// assert!(Embedding::new(vec![f32::NAN, 1.0]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding(Box<[f32]>);

impl Embedding {
    /// Checks and normalizes `v`.
    ///
    /// # Errors
    /// [`Error::InvalidVector`] when `v` is empty, has a NaN or infinite component, or is all
    /// zeros (it has no direction).
    pub fn new(mut v: Vec<f32>) -> Result<Self> {
        if v.is_empty() {
            return Err(Error::InvalidVector {
                reason: "it is empty".into(),
            });
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidVector {
                reason: format!("component {i} is {}", v[i]),
            });
        }
        let norm = v
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(Error::InvalidVector {
                reason: "it is the zero vector, which has no direction".into(),
            });
        }
        for x in &mut v {
            *x = (f64::from(*x) / norm) as f32;
        }
        Ok(Embedding(v.into_boxed_slice()))
    }

    /// The components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Number of dimensions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an `Embedding` is never empty. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Consumes the embedding, returning its components.
    pub fn into_vec(self) -> Vec<f32> {
        self.0.into_vec()
    }

    /// The BLOB stored in SQLite: `dims` little-endian IEEE-754 f32 values, no header.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 4);
        self.write_blob(&mut out);
        out
    }

    /// Appends the BLOB form to `out` (lets a bulk insert reuse one buffer).
    pub fn write_blob(&self, out: &mut Vec<u8>) {
        for x in self.0.iter() {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    /// Reads a BLOB written by [`to_blob`](Self::to_blob) without re-normalizing.
    ///
    /// Returns `None` when the length is not `dims * 4` or a value is not finite; the caller
    /// turns that into a corruption error naming the record.
    pub(crate) fn from_blob(blob: &[u8], dims: usize) -> Option<Self> {
        if blob.len() != dims * 4 {
            return None;
        }
        let mut v = Vec::with_capacity(dims);
        decode_into(blob, &mut v);
        if v.iter().any(|x| !x.is_finite()) {
            return None;
        }
        Some(Embedding(v.into_boxed_slice()))
    }
}

/// Appends the little-endian f32 values of `blob` to `out` (the length must be a multiple of 4).
pub(crate) fn decode_into(blob: &[u8], out: &mut Vec<f32>) {
    out.extend(
        blob.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
}

impl TryFrom<Vec<f32>> for Embedding {
    type Error = Error;
    fn try_from(v: Vec<f32>) -> Result<Self> {
        Embedding::new(v)
    }
}

impl AsRef<[f32]> for Embedding {
    fn as_ref(&self) -> &[f32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_vectors() {
        for v in [
            vec![],
            vec![0.0; 8],
            vec![1.0, f32::NAN],
            vec![f32::INFINITY, 0.0],
            vec![f32::NEG_INFINITY],
        ] {
            assert!(matches!(
                Embedding::new(v),
                Err(Error::InvalidVector { .. })
            ));
        }
    }

    #[test]
    fn normalizes_tiny_and_huge_values() {
        let e = Embedding::new(vec![1e-30, 1e-30]).unwrap();
        let n: f32 = e.as_slice().iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-6);
        let e = Embedding::new(vec![3e38, 3e38]).unwrap();
        let n: f32 = e.as_slice().iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-6);
    }

    #[test]
    fn blob_round_trip() {
        let e = Embedding::new(vec![1.0, -2.0, 0.5]).unwrap();
        let blob = e.to_blob();
        assert_eq!(blob.len(), 12);
        assert_eq!(Embedding::from_blob(&blob, 3).unwrap(), e);
        assert!(Embedding::from_blob(&blob, 4).is_none());
        assert!(Embedding::from_blob(&blob[..11], 3).is_none());
    }
}
