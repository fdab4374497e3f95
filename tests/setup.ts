import { afterAll } from "vitest";
import { removeTempDirs } from "./helpers/local";

// Each test file makes its own local D1/R2 state directories; leave none behind.
afterAll(() => removeTempDirs());
