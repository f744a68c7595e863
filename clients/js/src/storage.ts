/**
 * StorageAdapter keeps the library's state across reloads: the last seq seen per room, and the
 * messages not yet acknowledged. Browsers pass `localStorage`, React Native apps
 * `AsyncStorage`; any object with these three methods, synchronous or not, will do.
 */
export interface StorageAdapter {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/** memoryStorage returns a StorageAdapter in memory, for tests and for platforms without storage. */
export function memoryStorage(): StorageAdapter & { readonly data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => { data.set(k, v); },
    removeItem: (k) => { data.delete(k); },
  };
}
