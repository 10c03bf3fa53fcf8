/**
 * Synthetic images that are not eye crops, for fitting the out-of-distribution guard: flat colours,
 * noise, smooth textures, gradients, patterns, drawings of shapes, text and documents, landscapes,
 * cartoon faces, and eye crops cut into shuffled tiles. Deterministic for a seed. All are made at a
 * random source size and resized to S x S like any input.
 */
import sharp from 'sharp';
import { decodeImage } from './data.js';
import { mulberry32 } from './rng.js';

export const NEGATIVE_KINDS = [
  'flat', 'noise', 'smooth-noise', 'gradient', 'pattern', 'shapes', 'line-drawing', 'text', 'document', 'interface', 'landscape', 'cartoon-face', 'shuffled-tiles',
] as const;
export type NegativeKind = (typeof NEGATIVE_KINDS)[number];

type Rand = () => number;
const WORDS = 'the of case report evidence image model camera street station police date time name number address page total amount invoice meeting summary section figure table north south river mountain light green house window door car road'.split(' ');
const FONTS = ['sans-serif', 'serif', 'monospace', 'DejaVu Sans', 'Liberation Serif'];

const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rand, a: readonly T[]): T => a[Math.floor(r() * a.length)];
const colour = (r: Rand, lo = 0, hi = 255) => `rgb(${int(r, lo, hi)},${int(r, lo, hi)},${int(r, lo, hi)})`;

function rawImage(w: number, h: number, f: (x: number, y: number, k: number) => number): { data: Uint8Array; w: number; h: number } {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < 3; k++) data[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(f(x, y, k))));
  return { data, w, h };
}

function svg(w: number, h: number, body: string, bg: string): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="${bg}"/>${body}</svg>`);
}

function sentence(r: Rand, n: number): string {
  return Array.from({ length: n }, () => pick(r, WORDS)).join(' ');
}

async function render(kind: NegativeKind, r: Rand, eyes?: { pixels: Uint8Array; size: number; count: number }): Promise<Buffer | { data: Uint8Array; w: number; h: number }> {
  const w = int(r, 40, 200), h = Math.max(24, Math.round(w * (0.6 + r() * 0.9)));
  switch (kind) {
    case 'flat': {
      const c = [int(r, 0, 255), int(r, 0, 255), int(r, 0, 255)], amp = r() < 0.5 ? 0 : r() * 12;
      return rawImage(w, h, (_x, _y, k) => c[k] + (r() - 0.5) * amp);
    }
    case 'noise': {
      const grey = r() < 0.4, mean = int(r, 40, 215), amp = 30 + r() * 220;
      let last = 0;
      return rawImage(w, h, (_x, _y, k) => { if (k === 0 || !grey) last = mean + (r() - 0.5) * amp; return last; });
    }
    case 'smooth-noise': {
      const cell = int(r, 4, 24), gw = Math.ceil(w / cell) + 2, gh = Math.ceil(h / cell) + 2;
      const grid = Array.from({ length: gw * gh * 3 }, () => r());
      const base = [r(), r(), r()], amp = 0.2 + r() * 0.8;
      return rawImage(w, h, (x, y, k) => {
        const gx = x / cell, gy = y / cell, x0 = Math.floor(gx), y0 = Math.floor(gy), fx = gx - x0, fy = gy - y0;
        const g = (i: number, j: number) => grid[((j * gw) + i) * 3 + k];
        const v = g(x0, y0) * (1 - fx) * (1 - fy) + g(x0 + 1, y0) * fx * (1 - fy) + g(x0, y0 + 1) * (1 - fx) * fy + g(x0 + 1, y0 + 1) * fx * fy;
        return 255 * (base[k] * (1 - amp) + v * amp);
      });
    }
    case 'gradient': {
      const a = [int(r, 0, 255), int(r, 0, 255), int(r, 0, 255)], b = [int(r, 0, 255), int(r, 0, 255), int(r, 0, 255)];
      const radial = r() < 0.35, ang = r() * Math.PI * 2, cx = r() * w, cy = r() * h, noise = r() < 0.3 ? r() * 20 : 0;
      return rawImage(w, h, (x, y, k) => {
        const t = radial ? Math.min(1, Math.hypot(x - cx, y - cy) / Math.max(w, h)) : Math.min(1, Math.max(0, ((x - w / 2) * Math.cos(ang) + (y - h / 2) * Math.sin(ang)) / Math.max(w, h) + 0.5));
        return a[k] * (1 - t) + b[k] * t + (r() - 0.5) * noise;
      });
    }
    case 'pattern': {
      const period = int(r, 3, 30), a = [int(r, 0, 255), int(r, 0, 255), int(r, 0, 255)], b = [int(r, 0, 255), int(r, 0, 255), int(r, 0, 255)];
      const style = int(r, 0, 2), ang = r() * Math.PI;
      return rawImage(w, h, (x, y, k) => {
        const u = x * Math.cos(ang) + y * Math.sin(ang), v = -x * Math.sin(ang) + y * Math.cos(ang);
        const on = style === 0 ? Math.floor(u / period) % 2 === 0 : style === 1 ? (Math.floor(u / period) + Math.floor(v / period)) % 2 === 0 : Math.sin(u / period * 3) > 0.3 || Math.sin(v / period * 3) > 0.3;
        return on ? a[k] : b[k];
      });
    }
    case 'shapes': {
      let body = '';
      for (let i = int(r, 1, 9); i > 0; i--) {
        const t = int(r, 0, 3), fill = r() < 0.7 ? colour(r) : 'none', stroke = colour(r), sw = int(r, 1, 6);
        if (t === 0) body += `<circle cx="${int(r, 0, w)}" cy="${int(r, 0, h)}" r="${int(r, 3, w / 2)}" fill="${fill}" stroke="${stroke}" stroke-width="${sw}"/>`;
        else if (t === 1) body += `<rect x="${int(r, -10, w)}" y="${int(r, -10, h)}" width="${int(r, 4, w)}" height="${int(r, 4, h)}" fill="${fill}" stroke="${stroke}" stroke-width="${sw}"/>`;
        else if (t === 2) body += `<polygon points="${Array.from({ length: int(r, 3, 6) }, () => `${int(r, 0, w)},${int(r, 0, h)}`).join(' ')}" fill="${fill}" stroke="${stroke}" stroke-width="${sw}"/>`;
        else body += `<line x1="${int(r, 0, w)}" y1="${int(r, 0, h)}" x2="${int(r, 0, w)}" y2="${int(r, 0, h)}" stroke="${stroke}" stroke-width="${sw}"/>`;
      }
      return svg(w, h, body, colour(r));
    }
    case 'line-drawing': {
      // Strokes on paper: sketches, diagrams, clip art outlines.
      let body = '';
      const ink = colour(r, 0, 110), sw = int(r, 1, 4);
      for (let i = int(r, 2, 8); i > 0; i--) {
        const t = int(r, 0, 3), fill = r() < 0.25 ? colour(r) : 'none';
        if (t === 0) body += `<circle cx="${int(r, 0, w)}" cy="${int(r, 0, h)}" r="${int(r, 4, w / 2)}" fill="${fill}" stroke="${ink}" stroke-width="${sw}"/>`;
        else if (t === 1) body += `<rect x="${int(r, 0, w - 8)}" y="${int(r, 0, h - 8)}" width="${int(r, 6, w / 1.5)}" height="${int(r, 6, h / 1.5)}" fill="${fill}" stroke="${ink}" stroke-width="${sw}"/>`;
        else if (t === 2) body += `<polyline points="${Array.from({ length: int(r, 2, 6) }, () => `${int(r, 0, w)},${int(r, 0, h)}`).join(' ')}" fill="none" stroke="${ink}" stroke-width="${sw}"/>`;
        else body += `<path d="M${int(r, 0, w)} ${int(r, 0, h)} Q${int(r, 0, w)} ${int(r, 0, h)} ${int(r, 0, w)} ${int(r, 0, h)}" fill="none" stroke="${ink}" stroke-width="${sw}"/>`;
      }
      return svg(w, h, body, r() < 0.8 ? colour(r, 225, 255) : colour(r));
    }
    case 'interface': {
      // Screens and forms: a title bar, panels, buttons and fields with labels.
      const W = int(r, 120, 280), H = Math.round(W * (0.5 + r() * 0.5)), bar = int(r, 12, 26);
      let body = `<rect width="${W}" height="${bar}" fill="${colour(r, 10, 120)}"/><text x="6" y="${bar - 5}" font-family="${pick(r, FONTS)}" font-size="${bar - 8}" fill="#fff">${sentence(r, 2)}</text>`;
      for (let y = bar + 6; y < H - 10; y += int(r, 16, 30)) {
        const bw = int(r, 30, W - 20), bh = int(r, 10, 20);
        body += `<rect x="${int(r, 4, 14)}" y="${y}" width="${bw}" height="${bh}" rx="${int(r, 0, 6)}" fill="${colour(r, 150, 255)}" stroke="${colour(r, 60, 160)}"/>` +
          `<text x="${int(r, 8, 18)}" y="${y + bh - 3}" font-family="${pick(r, FONTS)}" font-size="${Math.max(6, bh - 6)}" fill="#222">${sentence(r, int(r, 1, 4))}</text>`;
      }
      return svg(W, H, body, colour(r, 200, 255));
    }
    case 'text': {
      const size = int(r, 10, Math.max(12, Math.round(h / 2))), ink = colour(r, 0, 120), paper = r() < 0.6 ? colour(r, 200, 255) : colour(r);
      let body = '';
      for (let y = size; y < h + size; y += Math.round(size * 1.3)) body += `<text x="${int(r, -20, 4)}" y="${y}" font-family="${pick(r, FONTS)}" font-size="${size}" fill="${ink}"${r() < 0.3 ? ' font-weight="bold"' : ''}>${sentence(r, int(r, 1, 6))}</text>`;
      return svg(w, h, body, paper);
    }
    case 'document': {
      const W = int(r, 120, 260), H = Math.round(W * (1.1 + r() * 0.4)), size = int(r, 5, 10);
      let body = `<text x="8" y="${size * 2}" font-family="${pick(r, FONTS)}" font-size="${size * 1.6}" font-weight="bold" fill="#111">${sentence(r, 3)}</text>`;
      for (let y = size * 4; y < H - 4; y += Math.round(size * 1.5)) {
        if (r() < 0.12) { body += `<line x1="6" y1="${y}" x2="${W - 6}" y2="${y}" stroke="#444" stroke-width="1"/>`; continue; }
        body += `<text x="8" y="${y}" font-family="${pick(r, FONTS)}" font-size="${size}" fill="#222">${sentence(r, int(r, 4, 12))}</text>`;
      }
      return svg(W, H, body, r() < 0.8 ? '#fdfdfb' : colour(r, 210, 255));
    }
    case 'landscape': {
      const horizon = Math.round(h * (0.3 + r() * 0.45));
      let body = `<defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${colour(r, 60, 200)}"/><stop offset="1" stop-color="${colour(r, 150, 255)}"/></linearGradient></defs>`;
      body += `<rect width="${w}" height="${horizon}" fill="url(#s)"/>`;
      if (r() < 0.5) body += `<circle cx="${int(r, 0, w)}" cy="${int(r, 0, horizon)}" r="${int(r, 3, 14)}" fill="${colour(r, 200, 255)}"/>`;
      let ridge = `M0 ${horizon}`;
      for (let x = 0; x <= w; x += int(r, 8, 30)) ridge += ` L${x} ${horizon - int(r, 0, Math.round(h / 4))}`;
      body += `<path d="${ridge} L${w} ${h} L0 ${h} Z" fill="${colour(r, 20, 140)}"/>`;
      body += `<rect y="${horizon + int(r, 2, 20)}" width="${w}" height="${h}" fill="${colour(r, 20, 160)}"/>`;
      for (let i = int(r, 0, 6); i > 0; i--) { const x = int(r, 0, w), y = int(r, horizon, h); body += `<rect x="${x}" y="${y - 14}" width="3" height="14" fill="#4a3322"/><circle cx="${x + 1}" cy="${y - 16}" r="${int(r, 4, 9)}" fill="${colour(r, 10, 110)}"/>`; }
      return svg(w, h, body, '#888');
    }
    case 'cartoon-face': {
      const skin = `rgb(${int(r, 120, 250)},${int(r, 80, 200)},${int(r, 50, 170)})`, cx = w / 2, cy = h / 2, rx = w * (0.25 + r() * 0.2), ry = h * (0.3 + r() * 0.15);
      const eyeY = cy - ry * 0.25, dx = rx * 0.4, er = Math.max(1.5, rx * 0.12);
      const body = `<ellipse cx="${cx}" cy="${cy}" rx="${rx}" ry="${ry}" fill="${skin}"/>` +
        `<ellipse cx="${cx - dx}" cy="${eyeY}" rx="${er * 1.6}" ry="${er}" fill="#fff"/><ellipse cx="${cx + dx}" cy="${eyeY}" rx="${er * 1.6}" ry="${er}" fill="#fff"/>` +
        `<circle cx="${cx - dx}" cy="${eyeY}" r="${er * 0.7}" fill="${colour(r, 0, 120)}"/><circle cx="${cx + dx}" cy="${eyeY}" r="${er * 0.7}" fill="${colour(r, 0, 120)}"/>` +
        `<path d="M${cx - rx * 0.35} ${cy + ry * 0.45} Q${cx} ${cy + ry * (0.5 + r() * 0.3)} ${cx + rx * 0.35} ${cy + ry * 0.45}" stroke="#622" stroke-width="2" fill="none"/>` +
        `<rect x="0" y="0" width="${w}" height="${Math.max(0, cy - ry * 0.9)}" fill="${colour(r, 0, 90)}"/>`;
      return svg(w, h, body, colour(r));
    }
    case 'shuffled-tiles': {
      if (!eyes || eyes.count === 0) return render('smooth-noise', r);
      const S = eyes.size, per = S * S * 3, src = eyes.pixels.subarray(int(r, 0, eyes.count - 1) * per);
      // Sattolo's shuffle: one cycle, so no tile stays in place (an intact eye is not a negative).
      const grid = int(r, 3, 4), tile = Math.floor(S / grid), order = Array.from({ length: grid * grid }, (_, i) => i);
      for (let i = order.length - 1; i > 0; i--) { const j = Math.floor(r() * i); [order[i], order[j]] = [order[j], order[i]]; }
      return rawImage(S, S, (x, y, k) => {
        const tx = Math.min(grid - 1, Math.floor(x / tile)), ty = Math.min(grid - 1, Math.floor(y / tile));
        const from = order[ty * grid + tx], fx = (from % grid) * tile + (x - tx * tile), fy = Math.floor(from / grid) * tile + (y - ty * tile);
        return src[(Math.min(S - 1, fy) * S + Math.min(S - 1, fx)) * 3 + k];
      });
    }
  }
}

/**
 * `count` synthetic non-eye images at S x S x 3 uint8, cycling through the kinds. `eyes` (decoded
 * eye crops) feed the shuffled-tile kind; without them it makes smooth noise instead.
 */
export async function generateNegatives(count: number, size: number, seed: number, eyes?: { pixels: Uint8Array; size: number; count: number }):
  Promise<{ pixels: Uint8Array; kinds: NegativeKind[] }> {
  const per = size * size * 3;
  const pixels = new Uint8Array(count * per);
  const kinds: NegativeKind[] = [];
  for (let i = 0; i < count; i++) {
    const r = mulberry32(seed * 7919 + i);
    const kind = NEGATIVE_KINDS[i % NEGATIVE_KINDS.length];
    const img = await render(kind, r, eyes && eyes.size === size ? eyes : undefined);
    let bytes: Buffer;
    if (Buffer.isBuffer(img)) bytes = await sharp(img).png().toBuffer();
    else {
      const d = img.data;
      bytes = await sharp(Buffer.from(d.buffer, d.byteOffset, d.length), { raw: { width: img.w, height: img.h, channels: 3 } }).png().toBuffer();
    }
    pixels.set(await decodeImage(bytes, size), i * per);
    kinds.push(kind);
  }
  return { pixels, kinds };
}
