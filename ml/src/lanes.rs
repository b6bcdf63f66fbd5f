//! Dot products for the fused host kernels (OpenLoRA's SGMV, the influence gradients).

/// `Σ a[i]·b[i]` in a fixed order: `LANES` interleaved partial sums (so it vectorises),
/// those summed in order, plus the tail past the last whole group of `LANES` summed in order.
#[inline(always)]
pub(crate) fn dot<const LANES: usize>(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f32; LANES];
    for (xa, xb) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(xa).zip(xb) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}
