/** Placeholder: conformance options for a store URL (written with the conformance command). */
export {};
