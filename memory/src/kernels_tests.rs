//! The kernels against the scalar reference, on every kernel this CPU has.

use super::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Every kernel this CPU runs agrees with the scalar reference, for every length
    /// (covering all tail paths) and for values of mixed sign and magnitude.
    #[test]
    fn kernels_match_scalar(pairs in (0usize..300).prop_flat_map(|n| (
        proptest::collection::vec(-10.0f32..10.0, n),
        proptest::collection::vec(-10.0f32..10.0, n),
    ))) {
        let (a, b) = pairs;
        let reference = f64::from(scalar(&a, &b));
        let magnitude: f64 = a.iter().zip(&b).map(|(x, y)| f64::from((x * y).abs())).sum();
        for k in available() {
            let got = f64::from((k.dot)(&a, &b));
            prop_assert!(
                (got - reference).abs() <= 1e-5 * magnitude.max(1.0),
                "kernel {} gave {got}, scalar {reference}", k.name
            );
        }
        let h: Vec<u16> = b.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
        let reference = f64::from(scalar_f16(&a, &h));
        for k in available() {
            let got = f64::from((k.dot_f16)(&a, &h));
            prop_assert!(
                (got - reference).abs() <= 1e-5 * magnitude.max(1.0),
                "f16 kernel {} gave {got}, scalar {reference}", k.name
            );
        }
        let ha: Vec<u16> = a.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
        let reference = f64::from(scalar_f16_f16(&ha, &h));
        for k in available() {
            let got = f64::from((k.dot_f16_f16)(&ha, &h));
            prop_assert!(
                (got - reference).abs() <= 1e-5 * magnitude.max(1.0),
                "f16·f16 kernel {} gave {got}, scalar {reference}", k.name
            );
        }
    }
}

proptest! {
    /// Integer kernels are exact: every one equals the scalar reference.
    #[test]
    fn i8_kernels_equal_scalar(pairs in (0usize..600).prop_flat_map(|n| (
        proptest::collection::vec(any::<i8>(), n),
        proptest::collection::vec(any::<i8>(), n),
    ))) {
        let (a, b) = pairs;
        let reference = scalar_i8(&a, &b);
        for k in available() {
            prop_assert_eq!((k.dot_i8)(&a, &b), reference, "kernel {}", k.name);
        }
    }
}

proptest! {
    /// Hamming kernels are exact: every one equals the scalar reference, which equals
    /// counting differing bits one at a time.
    #[test]
    fn hamming_kernels_equal_scalar(pairs in (0usize..20).prop_flat_map(|n| (
        proptest::collection::vec(any::<u64>(), n),
        proptest::collection::vec(any::<u64>(), n),
    ))) {
        let (a, b) = pairs;
        let reference = scalar_hamming(&a, &b);
        let by_bit: u32 = a
            .iter()
            .zip(&b)
            .flat_map(|(x, y)| (0..64).map(move |i| u32::from(((x >> i) & 1) != ((y >> i) & 1))))
            .sum();
        prop_assert_eq!(reference, by_bit);
        for k in available() {
            prop_assert_eq!((k.hamming)(&a, &b), reference, "kernel {}", k.name);
        }
    }

    /// Block Hamming kernels equal the one-pair reference row by row.
    #[test]
    fn hamming_rows_kernels_equal_scalar(input in (0usize..9, 0usize..40).prop_flat_map(|(w, n)| (
        proptest::collection::vec(any::<u64>(), w),
        proptest::collection::vec(any::<u64>(), w * n),
    ))) {
        let (query, rows) = (input.0, input.1);
        // Empty vectors: any number of rows (three here), all at distance 0.
        let n = if query.is_empty() { 3 } else { rows.len() / query.len() };
        let reference: Vec<u32> = if query.is_empty() {
            vec![0; n]
        } else {
            rows.chunks_exact(query.len()).map(|r| scalar_hamming(&query, r)).collect()
        };
        for k in available() {
            let mut out = vec![u32::MAX; n];
            (k.hamming_rows)(&query, &rows, &mut out);
            prop_assert_eq!(&out, &reference, "kernel {}", k.name);
        }
    }
}

#[test]
fn prefetch_accepts_any_slice() {
    prefetch::<f32>(&[]);
    prefetch(&[1u8]);
    prefetch(&vec![0f32; 1_000][3..997]);
}

#[test]
fn best_is_the_last_available() {
    assert_eq!(best().name, available().last().unwrap().name);
    assert_eq!(dot(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
}

#[test]
fn mismatched_lengths_panic_in_every_kernel() {
    for k in available() {
        let r = std::panic::catch_unwind(|| (k.dot)(&[1.0, 2.0], &[1.0]));
        assert!(
            r.is_err(),
            "kernel {} accepted slices of different lengths",
            k.name
        );
        let r = std::panic::catch_unwind(|| (k.hamming)(&[1, 2], &[1]));
        assert!(
            r.is_err(),
            "Hamming kernel {} accepted slices of different lengths",
            k.name
        );
        let r = std::panic::catch_unwind(|| (k.hamming_rows)(&[1, 2], &[1, 2, 3], &mut [0]));
        assert!(
            r.is_err(),
            "Hamming rows kernel {} accepted a partial row",
            k.name
        );
    }
}
