/** The version custos reports and records in what it writes. */
export const VERSION = '0.1.0';
