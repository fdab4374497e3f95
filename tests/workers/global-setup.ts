// Runs in Node before the workers pool starts: a real HTTP receiver for alert webhooks
// (tests/helpers/alert-receiver.ts). Its URL reaches the Worker as the ALERT_RECEIVER_URL binding
// (vitest.workers.config.mts injects it), so the cron Worker inside workerd posts its alerts over
// a real socket to 127.0.0.1, and the tests read back what arrived from GET /__received.
import type { TestProject } from "vitest/node";
import { startAlertReceiver } from "../helpers/alert-receiver";

declare module "vitest" {
  export interface ProvidedContext {
    alertReceiverUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const receiver = await startAlertReceiver();
  project.provide("alertReceiverUrl", receiver.url);
  return () => receiver.close();
}
