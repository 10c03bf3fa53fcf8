// Checks that uploaded bytes are an image we accept, from the content and never the file name:
// the magic bytes name the format, then sharp must fully decode the pixels.
import sharp, { type Metadata } from 'sharp';
import { AppError } from '../errors.js';
import { MAX_DECODE_PIXELS } from '../ml/data.js';

export const ACCEPTED_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;
export type MediaType = (typeof ACCEPTED_MEDIA_TYPES)[number];

export interface ProbedImage {
  mediaType: MediaType;
  width: number;
  height: number;
  byteSize: number;
}


export function sniffMediaType(bytes: Buffer): MediaType | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return null;
}

export async function probeImage(bytes: Buffer, label = 'The file'): Promise<ProbedImage> {
  if (bytes.length === 0) throw new AppError('BAD_USER_INPUT', `${label} is empty`);
  const mediaType = sniffMediaType(bytes);
  if (!mediaType) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `${label} is not a JPEG, PNG or WebP image (judged from its content)`, { accepted: [...ACCEPTED_MEDIA_TYPES] });
  }
  let header: Metadata;
  try {
    header = await sharp(bytes).metadata();
  } catch (err) {
    throw new AppError('BAD_USER_INPUT', `${label} looks like ${mediaType} but could not be decoded: ${(err as Error).message}`);
  }
  // The engine's own limit, so that an accepted image can always be classified.
  if ((header.width ?? 0) * (header.height ?? 0) > MAX_DECODE_PIXELS) {
    throw new AppError('PAYLOAD_TOO_LARGE', `${label} is ${header.width}x${header.height} pixels; at most ${MAX_DECODE_PIXELS.toLocaleString('en')} pixels are accepted (crop it to the eye region)`, { maxPixels: MAX_DECODE_PIXELS });
  }
  try {
    // Decoding every pixel (not only the header) catches truncated and corrupt files.
    const { info } = await sharp(bytes, { limitInputPixels: MAX_DECODE_PIXELS, failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
    return { mediaType, width: info.width, height: info.height, byteSize: bytes.length };
  } catch (err) {
    throw new AppError('BAD_USER_INPUT', `${label} looks like ${mediaType} but could not be decoded: ${(err as Error).message}`);
  }
}
