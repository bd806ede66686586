// Line icons for the demo shop (hand-drawn SVG, 24×24, stroke = currentColor): no image files,
// no emoji font needed. `<span data-icon="shoe"></span>` is filled by fillIcons().
const P = {
  shoe: '<path d="M2.5 17.5v-5.2c0-.7.6-1.2 1.3-1.1 1.9.3 3.3 1.3 4.6 2.6l1.3 1.2c1.6 1.4 3.6 2.2 5.7 2.5l3.8.5c1.4.2 2.3 1.2 2.3 2.4v.1H2.5z"/><path d="M2.5 17.5h19.3M9 12.5l1.6-1.6M11.2 14.3l1.6-1.6M13.6 15.7l1.5-1.5"/>',
  bag: '<path d="M6 8.5c0-1.9 1.6-3.5 3.5-3.5h5c1.9 0 3.5 1.6 3.5 3.5V19a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2z"/><path d="M9.5 5V4a2.5 2.5 0 0 1 5 0v1M8.5 13h7v4h-7zM6 11h12"/>',
  tent: '<path d="M12 3.5 2.5 20.5h19z"/><path d="M12 3.5v0M12 9.5l-3.8 11M12 9.5l3.8 11M1.5 20.5h21"/>',
  trophy: '<path d="M7.5 4h9v5a4.5 4.5 0 0 1-9 0z"/><path d="M7.5 6H4.5a3 3 0 0 0 3 4M16.5 6h3a3 3 0 0 1-3 4M12 13.5v3.5M8.5 20.5h7l-.8-3.5H9.3z"/>',
  mountain: '<path d="m2 20 7-12 4 6.5 2.5-3.5L22 20z"/><path d="m7.3 11 1.7 1.3 1.6-1.2M17 8.5a2 2 0 1 0 0-4 2 2 0 0 0 0 4z"/>',
  cart: '<path d="M3 4h2.2l2.3 11h11l2-8H6.2"/><circle cx="9" cy="19" r="1.5"/><circle cx="17" cy="19" r="1.5"/>',
  star: '<path d="m12 3 2.7 5.6 6.1.8-4.5 4.2 1.1 6.1L12 16.8l-5.4 2.9 1.1-6.1-4.5-4.2 6.1-.8z"/>',
  leaf: '<path d="M5 19c0-8 5-13 15-14-1 10-6 15-14 15"/><path d="M5 19c3-4 6-7 10-9.5"/>',
  party: '<path d="m3 21 5-13 8 8z"/><path d="M14 3v2M19 5l-1.5 1.5M21 10h-2M12.5 8.5c1-1.5 1-3 0-4.5M15.5 11.5c1.5-1 3-1 4.5 0"/>',
};

export const icon = (name, cls = "") => `<svg class="ico ${cls}" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${P[name] || ""}</svg>`;

export function fillIcons(root = document) {
  for (const el of root.querySelectorAll("[data-icon]:empty")) el.innerHTML = icon(el.dataset.icon);
}
