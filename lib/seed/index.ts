// Deterministic demo data for the portal schema (any size, in seconds).
export { seedDemoData } from "./seed";
