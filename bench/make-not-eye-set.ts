/**
 * Writes the committed evaluation set of images that are NOT eye crops (test/fixtures/not-eyes/):
 * npm run fixtures:not-eyes [-- <out dir>]
 * Drawn independently of the generator the guard is fitted on (src/ml/negatives.ts): other scenes,
 * other layouts, other sizes and file formats, its own seed. Kinds are the file-name prefixes.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { PROJECT_ROOT } from '../src/shared/project-root.js';
import { mulberry32 } from '../src/ml/rng.js';

const out = process.argv[2] ?? path.join(PROJECT_ROOT, 'test', 'fixtures', 'not-eyes');
const r = mulberry32(20261128);
const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const rgb = (lo = 0, hi = 255) => `rgb(${int(lo, hi)},${int(lo, hi)},${int(lo, hi)})`;
const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
const svg = (w: number, h: number, body: string) => Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${body}</svg>`);
const raw = (w: number, h: number, f: (x: number, y: number) => [number, number, number]) => {
  const d = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const c = f(x, y); for (let k = 0; k < 3; k++) d[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(c[k]))); }
  return sharp(d, { raw: { width: w, height: h, channels: 3 } });
};
const TEXT = 'Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua Ut enim ad minim veniam quis nostrud exercitation'.split(' ');
const words = (n: number) => Array.from({ length: n }, () => pick(TEXT)).join(' ');

type Maker = () => { img: Sharp; w: number; h: number };
const kinds: Record<string, { count: number; make: Maker }> = {
  flat: { count: 10, make: () => { const w = int(48, 160), h = int(48, 160); const c = [[220, 20, 20], [0, 0, 0], [255, 255, 255], [128, 128, 128], [int(150, 240), int(100, 180), int(80, 150)], [int(0, 255), int(0, 255), int(0, 255)]][int(0, 5)]; return { img: raw(w, h, () => c as [number, number, number]), w, h }; } },
  noise: { count: 8, make: () => { const w = int(48, 128), h = int(48, 128), style = int(0, 2); return { img: raw(w, h, () => { if (style === 0) { const v = r() * 255; return [v, v, v]; } if (style === 1) { const v = r() < 0.5 ? 0 : 255; return [v, v, v]; } return [r() * 255, r() * 255, r() * 255]; }), w, h }; } },
  gradient: { count: 8, make: () => { const w = int(64, 200), h = int(64, 200); const a = [int(0, 255), int(0, 255), int(0, 255)], b = [int(0, 255), int(0, 255), int(0, 255)], vertical = r() < 0.5, radial = r() < 0.3;
    return { img: raw(w, h, (x, y) => { const t = radial ? Math.min(1, Math.hypot(x - w / 2, y - h / 2) / (w / 2)) : vertical ? y / h : x / w; return [0, 1, 2].map((k) => a[k] + (b[k] - a[k]) * t) as [number, number, number]; }), w, h }; } },
  document: { count: 10, make: () => { const w = int(160, 240), h = Math.round(w * 1.3); let b = `<rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-family="serif" font-size="14" font-weight="bold">${words(3)}</text>`;
    const table = r() < 0.4;
    for (let y = 40; y < h - 10; y += 12) b += table ? `<rect x="10" y="${y - 9}" width="${w - 20}" height="12" fill="none" stroke="#333"/><line x1="${w / 2}" y1="${y - 9}" x2="${w / 2}" y2="${y + 3}" stroke="#333"/><text x="14" y="${y}" font-family="sans-serif" font-size="8">${words(2)}</text>` : `<text x="10" y="${y}" font-family="sans-serif" font-size="8" fill="#222">${words(int(5, 9))}</text>`;
    return { img: sharp(svg(w, h, b)), w, h }; } },
  screenshot: { count: 6, make: () => { const w = int(200, 280), h = int(140, 200); let b = `<rect width="100%" height="100%" fill="${rgb(230, 255)}"/><rect width="100%" height="24" fill="${rgb(20, 90)}"/><text x="8" y="16" font-family="sans-serif" font-size="11" fill="white">${words(2)}</text>`;
    for (let i = 0; i < 4; i++) b += `<rect x="10" y="${34 + i * 26}" width="${int(80, w - 40)}" height="18" rx="4" fill="${rgb(150, 250)}" stroke="#777"/><text x="16" y="${47 + i * 26}" font-family="sans-serif" font-size="10">${words(3)}</text>`;
    return { img: sharp(svg(w, h, b)), w, h }; } },
  landscape: { count: 10, make: () => { const w = int(120, 260), h = Math.round(w * (0.55 + r() * 0.3)), hz = Math.round(h * (0.35 + r() * 0.3)), scene = int(0, 3);
    let b = `<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${scene === 3 ? '#0a0a30' : '#3d7fd1'}"/><stop offset="1" stop-color="${scene === 3 ? '#202060' : '#bfe0ff'}"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>`;
    if (scene === 0) b += `<rect y="${hz}" width="${w}" height="${h}" fill="#1e5f8c"/><rect y="${hz + (h - hz) * 0.6}" width="${w}" height="${h}" fill="#e8d49a"/>`;
    if (scene === 1) b += `<polygon points="0,${h} ${w * 0.3},${hz - 30} ${w * 0.55},${h} " fill="#6b6b7a"/><polygon points="${w * 0.3},${hz - 30} ${w * 0.24},${hz - 12} ${w * 0.36},${hz - 12}" fill="white"/><polygon points="${w * 0.4},${h} ${w * 0.75},${hz - 10} ${w},${h}" fill="#55556a"/><rect y="${h - 20}" width="${w}" height="20" fill="#3b7a2a"/>`;
    if (scene === 2) { for (let x = 0; x < w; x += int(12, 30)) { const bh = int(20, hz + 20); b += `<rect x="${x}" y="${h - bh}" width="${int(10, 26)}" height="${bh}" fill="${rgb(40, 110)}"/>`; } }
    if (scene === 3) { for (let i = 0; i < 40; i++) b += `<circle cx="${int(0, w)}" cy="${int(0, hz)}" r="1" fill="white"/>`; b += `<circle cx="${w * 0.8}" cy="${h * 0.2}" r="10" fill="#f4f1c9"/><rect y="${hz}" width="${w}" height="${h}" fill="#111"/>`; }
    return { img: sharp(svg(w, h, b)), w, h }; } },
  drawing: { count: 10, make: () => { const w = int(100, 200), h = int(100, 200), what = int(0, 4), ink = rgb(0, 90), bg = r() < 0.7 ? 'white' : rgb(200, 255);
    const bodies = [
      `<rect x="${w * 0.25}" y="${h * 0.45}" width="${w * 0.5}" height="${h * 0.4}" fill="none" stroke="${ink}" stroke-width="3"/><polygon points="${w * 0.2},${h * 0.45} ${w / 2},${h * 0.15} ${w * 0.8},${h * 0.45}" fill="none" stroke="${ink}" stroke-width="3"/><rect x="${w * 0.45}" y="${h * 0.65}" width="${w * 0.1}" height="${h * 0.2}" fill="${ink}"/>`,
      `<rect x="${w * 0.46}" y="${h * 0.5}" width="${w * 0.08}" height="${h * 0.4}" fill="#6b4226"/><circle cx="${w / 2}" cy="${h * 0.38}" r="${Math.min(w, h) * 0.25}" fill="#2f8f3a"/>`,
      `<rect x="${w * 0.15}" y="${h * 0.45}" width="${w * 0.7}" height="${h * 0.2}" rx="8" fill="${rgb()}"/><rect x="${w * 0.3}" y="${h * 0.3}" width="${w * 0.35}" height="${h * 0.17}" rx="6" fill="${rgb()}"/><circle cx="${w * 0.3}" cy="${h * 0.68}" r="${h * 0.08}" fill="#222"/><circle cx="${w * 0.7}" cy="${h * 0.68}" r="${h * 0.08}" fill="#222"/>`,
      `<circle cx="${w / 2}" cy="${h * 0.2}" r="${h * 0.1}" fill="none" stroke="${ink}" stroke-width="3"/><line x1="${w / 2}" y1="${h * 0.3}" x2="${w / 2}" y2="${h * 0.65}" stroke="${ink}" stroke-width="3"/><line x1="${w * 0.3}" y1="${h * 0.45}" x2="${w * 0.7}" y2="${h * 0.45}" stroke="${ink}" stroke-width="3"/><line x1="${w / 2}" y1="${h * 0.65}" x2="${w * 0.35}" y2="${h * 0.9}" stroke="${ink}" stroke-width="3"/><line x1="${w / 2}" y1="${h * 0.65}" x2="${w * 0.65}" y2="${h * 0.9}" stroke="${ink}" stroke-width="3"/>`,
      Array.from({ length: 6 }, (_, i) => `<ellipse cx="${w / 2 + Math.cos(i) * w * 0.18}" cy="${h / 2 + Math.sin(i) * h * 0.18}" rx="${w * 0.12}" ry="${h * 0.07}" fill="${rgb(150, 255)}" transform="rotate(${i * 60} ${w / 2} ${h / 2})"/>`).join('') + `<circle cx="${w / 2}" cy="${h / 2}" r="${w * 0.08}" fill="#f2c400"/>`,
    ];
    return { img: sharp(svg(w, h, `<rect width="100%" height="100%" fill="${bg}"/>${bodies[what]}`)), w, h }; } },
  face: { count: 6, make: () => { const w = int(100, 180), h = Math.round(w * 1.2), skin = pick(['#f1c27d', '#e0ac69', '#c68642', '#8d5524', '#ffdbac']);
    const b = `<rect width="100%" height="100%" fill="${rgb(100, 230)}"/><ellipse cx="${w / 2}" cy="${h * 0.52}" rx="${w * 0.36}" ry="${h * 0.4}" fill="${skin}"/><path d="M${w * 0.14} ${h * 0.42} Q${w / 2} ${h * 0.02} ${w * 0.86} ${h * 0.42}" fill="${rgb(0, 80)}"/>` +
      `<ellipse cx="${w * 0.37}" cy="${h * 0.48}" rx="${w * 0.07}" ry="${h * 0.03}" fill="white"/><ellipse cx="${w * 0.63}" cy="${h * 0.48}" rx="${w * 0.07}" ry="${h * 0.03}" fill="white"/><circle cx="${w * 0.37}" cy="${h * 0.48}" r="${w * 0.03}" fill="#3a2a1a"/><circle cx="${w * 0.63}" cy="${h * 0.48}" r="${w * 0.03}" fill="#3a2a1a"/>` +
      `<path d="M${w / 2} ${h * 0.52} L${w * 0.46} ${h * 0.64} L${w * 0.54} ${h * 0.64}" fill="none" stroke="#7a4a30" stroke-width="2"/><path d="M${w * 0.38} ${h * 0.74} Q${w / 2} ${h * 0.8} ${w * 0.62} ${h * 0.74}" fill="none" stroke="#a33" stroke-width="3"/>`;
    return { img: sharp(svg(w, h, b)), w, h }; } },
  texture: { count: 8, make: () => { const w = int(80, 180), h = int(80, 180), t = int(0, 3), c1 = [int(60, 200), int(40, 160), int(20, 120)];
    return { img: raw(w, h, (x, y) => {
      if (t === 0) { const row = Math.floor(y / 12), off = row % 2 ? 12 : 0, mortar = y % 12 < 2 || (x + off) % 24 < 2; return mortar ? [200, 200, 190] : [c1[0] + (r() - 0.5) * 30, c1[1] * 0.5, c1[2] * 0.4]; }
      if (t === 1) { const v = Math.sin(x * 0.08 + Math.sin(y * 0.05) * 3) * 30; return [150 + v, 100 + v, 60 + v * 0.5]; }
      if (t === 2) { const a = Math.floor(x / 10) % 2, b = Math.floor(y / 10) % 2; return a && b ? [180, 30, 40] : a || b ? [120, 40, 60] : [30, 40, 90]; }
      return [c1[0] + (r() - 0.5) * 80, c1[1] + 60 + (r() - 0.5) * 80, c1[2] * 0.3]; }), w, h }; } },
};

await fs.mkdir(out, { recursive: true });
let total = 0, files = 0;
for (const [kind, { count, make }] of Object.entries(kinds)) {
  for (let i = 1; i <= count; i++) {
    const { img } = make();
    const jpeg = r() < 0.6;
    const bytes = jpeg ? await img.jpeg({ quality: int(70, 92) }).toBuffer() : await img.png({ compressionLevel: 9, palette: kind !== 'noise' }).toBuffer();
    await fs.writeFile(path.join(out, `${kind}-${String(i).padStart(2, '0')}.${jpeg ? 'jpg' : 'png'}`), bytes);
    total += bytes.length; files++;
  }
}
console.log(`wrote ${files} images (${(total / 1024).toFixed(0)} KB) to ${out}`);
