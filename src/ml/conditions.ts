/**
 * Image conditions investigators' photos come in, applied to the encoded image at its source
 * resolution (as a camera or an editor would), for robustness measurements.
 */
import sharp, { type Sharp } from 'sharp';

export interface Condition { name: string; apply: (bytes: Uint8Array) => Promise<Uint8Array> }

const img = (bytes: Uint8Array) => sharp(bytes).rotate().removeAlpha().toColourspace('srgb');
const png = async (s: Sharp) => new Uint8Array(await s.png().toBuffer());

/** Rotate by `deg` keeping the image size; the corners outside the source are black. */
async function rotateKeepSize(bytes: Uint8Array, deg: number): Promise<Uint8Array> {
  const { width = 0, height = 0 } = await sharp(bytes).metadata();
  const rotated = await img(bytes).rotate(deg, { background: { r: 0, g: 0, b: 0 } }).raw().toBuffer({ resolveWithObject: true });
  const left = Math.floor((rotated.info.width - width) / 2), top = Math.floor((rotated.info.height - height) / 2);
  return png(sharp(rotated.data, { raw: { width: rotated.info.width, height: rotated.info.height, channels: rotated.info.channels } }).extract({ left, top, width, height }));
}

async function centreCrop(bytes: Uint8Array, share: number): Promise<Uint8Array> {
  const { width = 0, height = 0 } = await sharp(bytes).metadata();
  const w = Math.max(1, Math.round(width * share)), h = Math.max(1, Math.round(height * share));
  return png(img(bytes).extract({ left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h }));
}

async function downUp(bytes: Uint8Array, px: number): Promise<Uint8Array> {
  const { width = 0, height = 0 } = await sharp(bytes).metadata();
  const small = await img(bytes).resize(px, px, { fit: 'fill' }).png().toBuffer();
  return png(sharp(small).resize(width, height, { fit: 'fill' }));
}

export const ROBUSTNESS_CONDITIONS: Condition[] = [
  { name: 'as is', apply: async (b) => b },
  { name: 'rotated 15° (black corners)', apply: (b) => rotateKeepSize(b, 15) },
  { name: 'rotated -15° (black corners)', apply: (b) => rotateKeepSize(b, -15) },
  { name: 'centre crop 80%', apply: (b) => centreCrop(b, 0.8) },
  { name: 'JPEG quality 20', apply: async (b) => new Uint8Array(await img(b).jpeg({ quality: 20 }).toBuffer()) },
  { name: 'brightness x0.6', apply: (b) => png(img(b).linear(0.6, 0)) },
  { name: 'brightness x1.4', apply: (b) => png(img(b).linear(1.4, 0)) },
  { name: 'grey-scale', apply: (b) => png(img(b).greyscale()) },
  { name: 'blur sigma 1.5', apply: (b) => png(img(b).blur(1.5)) },
  { name: 'low resolution (16 px source)', apply: (b) => downUp(b, 16) },
  { name: 'horizontally flipped', apply: (b) => png(img(b).flop()) },
];
