// Checks that uploaded bytes are an image we accept, from the content and never the file name:
// the magic bytes name the format, then sharp must fully decode the pixels.
import sharp, { type Metadata } from 'sharp';
import { AppError } from '../errors.js';
import { MAX_DECODE_PIXELS } from '../ml/data.js';
import { ImageDecodeError } from '../ml/errors.js';
import { plainJpegSize } from '../ml/resize.js';

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

async function readHeader(bytes: Buffer, label: string, mediaType: MediaType): Promise<Metadata> {
  try {
    return await sharp(bytes).metadata();
  } catch (err) {
    throw new AppError('BAD_USER_INPUT', `${label} looks like ${mediaType} but could not be decoded: ${(err as Error).message}`);
  }
}

/**
 * Sniffs, reads the header and decodes every pixel (which catches truncated and corrupt files).
 * A caller that decodes the pixels anyway (the classifier, at its input size) passes that decode as
 * `decode` and gets its result back: one decode serves validation and inference.
 */
export async function probeImage<D = undefined>(bytes: Buffer, label = 'The file', decode?: (bytes: Buffer) => Promise<D>): Promise<ProbedImage & { decoded: D }> {
  if (bytes.length === 0) throw new AppError('BAD_USER_INPUT', `${label} is empty`);
  const mediaType = sniffMediaType(bytes);
  if (!mediaType) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `${label} is not a JPEG, PNG or WebP image (judged from its content)`, { accepted: [...ACCEPTED_MEDIA_TYPES] });
  }
  // A plain JPEG's size is read from its frame header here: sharp's metadata() costs about 0.2 ms
  // of CPU per upload and gives the same two numbers (no EXIF, so nothing rotates the image).
  const header: Pick<Metadata, 'width' | 'height'> = (mediaType === 'image/jpeg' ? plainJpegSize(bytes) : null) ?? await readHeader(bytes, label, mediaType);
  // The engine's own limit, so that an accepted image can always be classified.
  if ((header.width ?? 0) * (header.height ?? 0) > MAX_DECODE_PIXELS) {
    throw new AppError('PAYLOAD_TOO_LARGE', `${label} is ${header.width}x${header.height} pixels; at most ${MAX_DECODE_PIXELS.toLocaleString('en')} pixels are accepted (crop it to the eye region)`, { maxPixels: MAX_DECODE_PIXELS });
  }
  if (decode) {
    try {
      const decoded = await decode(bytes);
      return { mediaType, width: header.width!, height: header.height!, byteSize: bytes.length, decoded };
    } catch (err) {
      // Only a failed decode is the caller's mistake; anything else (no model, say) keeps its own error.
      if (!(err instanceof ImageDecodeError)) throw err;
      throw new AppError('BAD_USER_INPUT', `${label} looks like ${mediaType} but could not be decoded: ${err.message.replace(/^not a decodable image: /, '')}`);
    }
  }
  try {
    const { info } = await sharp(bytes, { limitInputPixels: MAX_DECODE_PIXELS, failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
    return { mediaType, width: info.width, height: info.height, byteSize: bytes.length, decoded: undefined as D };
  } catch (err) {
    throw new AppError('BAD_USER_INPUT', `${label} looks like ${mediaType} but could not be decoded: ${(err as Error).message}`);
  }
}
