/** Ends the throwaway server, if global-setup started one. */
export default async function globalTeardown(): Promise<void> {
  await globalThis.crmMySQLService?.stop();
}
