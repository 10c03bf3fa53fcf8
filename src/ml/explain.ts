/** Occlusion explanation: grey out patches, measure the drop in the predicted class's probability. */
import sharp from 'sharp';

/**
 * @param px S x S x 3 uint8 image; @param pMale its P(male); @param predict P(male) for n images.
 * Returns a PNG (4x the input size, at least 192 px): the image in grey with the evidence map in
 * red/yellow on top (brighter = occluding that area lowered the predicted class's probability more).
 */
export async function occlusionHeatmap(px: Uint8Array, S: number, pMale: number,
  predict: (batch: Uint8Array, n: number) => Float64Array): Promise<Buffer> {
  const patch = Math.max(2, Math.round(S / 4));
  const stride = Math.max(1, Math.round(S / 8));
  const positions: Array<[number, number]> = [];
  for (let y = 0; y + patch <= S + stride - 1 && y < S; y += stride) for (let x = 0; x < S; x += stride) positions.push([y, x]);
  const per = S * S * 3;
  const batch = new Uint8Array(positions.length * per);
  positions.forEach(([y0, x0], k) => {
    batch.set(px, k * per);
    for (let y = y0; y < Math.min(S, y0 + patch); y++) for (let x = x0; x < Math.min(S, x0 + patch); x++) {
      const o = k * per + (y * S + x) * 3;
      batch[o] = 128; batch[o + 1] = 128; batch[o + 2] = 128;
    }
  });
  const probs = predict(batch, positions.length);
  const male = pMale >= 0.5;
  const heat = new Float64Array(S * S), cover = new Float64Array(S * S);
  positions.forEach(([y0, x0], k) => {
    const drop = male ? pMale - probs[k] : probs[k] - pMale; // evidence for the predicted class
    for (let y = y0; y < Math.min(S, y0 + patch); y++) for (let x = x0; x < Math.min(S, x0 + patch); x++) {
      heat[y * S + x] += drop; cover[y * S + x]++;
    }
  });
  let max = 1e-6;
  for (let i = 0; i < heat.length; i++) { heat[i] = cover[i] ? Math.max(0, heat[i] / cover[i]) : 0; max = Math.max(max, heat[i]); }
  const rgb = new Uint8Array(S * S * 3);
  for (let i = 0; i < S * S; i++) {
    const g = 0.299 * px[i * 3] + 0.587 * px[i * 3 + 1] + 0.114 * px[i * 3 + 2];
    const h = heat[i] / max; // 0..1
    const a = 0.65 * h;
    // colour ramp: dark red -> red -> yellow
    const cr = 255, cg = Math.round(255 * Math.max(0, h - 0.5) * 2), cb = 0;
    rgb[i * 3] = Math.round(g * (1 - a) + cr * a);
    rgb[i * 3 + 1] = Math.round(g * (1 - a) + cg * a);
    rgb[i * 3 + 2] = Math.round(g * (1 - a) + cb * a);
  }
  const out = Math.max(192, S * 4);
  return sharp(rgb, { raw: { width: S, height: S, channels: 3 } }).resize(out, out, { kernel: 'cubic' }).png().toBuffer();
}
