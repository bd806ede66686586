// The demo shop's catalogue and a pretend CRM (what a real shop would fetch from its backend).
export const CATEGORIES = {
  shoes: { name: "Shoes", icon: "shoe", blurb: "Trail, road and everyday sneakers." },
  bags: { name: "Bags", icon: "bag", blurb: "Daypacks, totes and travel bags." },
  outdoor: { name: "Outdoor", icon: "tent", blurb: "Tents, lights and camp kitchen." },
};

export const PRODUCTS = [
  { id: "trail-runner", category: "shoes", name: "Trail Runner 2", price: 129 },
  { id: "city-sneaker", category: "shoes", name: "City Sneaker", price: 89 },
  { id: "hiking-boot", category: "shoes", name: "Summit Hiking Boot", price: 179 },
  { id: "sandal", category: "shoes", name: "Riverside Sandal", price: 49 },
  { id: "daypack", category: "bags", name: "Daypack 24L", price: 79 },
  { id: "tote", category: "bags", name: "Market Tote", price: 35 },
  { id: "duffel", category: "bags", name: "Weekender Duffel", price: 119 },
  { id: "tent", category: "outdoor", name: "Two-Person Tent", price: 249 },
  { id: "lantern", category: "outdoor", name: "Camp Lantern", price: 29 },
  { id: "stove", category: "outdoor", name: "Pocket Stove", price: 59 },
];

export const product = (id) => PRODUCTS.find((p) => p.id === id);

/**
 * The pretend CRM: what the shop's backend would answer for a logged-in email. Addresses at
 * gold.example (and ada@…) are gold-tier customers.
 */
export function crmLookup(email) {
  const e = String(email).trim().toLowerCase();
  const local = e.split("@")[0] || "friend";
  const firstName = local.charAt(0).toUpperCase() + local.slice(1).replace(/[._-].*$/, "");
  const gold = /@gold\.example$/.test(e) || e.startsWith("ada@");
  return { firstName, tier: gold ? "gold" : "standard", customerSince: gold ? 2019 : 2026 };
}
