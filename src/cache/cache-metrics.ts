// Exposes a read-through cache's figures on a daemon's Prometheus registry (read when scraped).
import type { Registry } from 'prom-client';
import { pulledCounter } from '../metrics/pulled-counter.js';
import type { CacheStats } from './action-filter-cache.js';

export function registerCacheMetrics(registry: Registry, stats: CacheStats): void {
  const counter = (name: string, help: string, value: () => number) => pulledCounter(registry, name, help, value);
  counter('afc_cache_hits_total', 'Workflows served from the store', () => stats.hits);
  counter('afc_cache_misses_total', 'Workflows loaded from the database because the store had no entry', () => stats.misses);
  counter('afc_cache_bypassed_total', 'Workflows read from the database only (readFraction)', () => stats.bypassed);
  counter('afc_cache_fills_total', 'Entries written back after a miss', () => stats.filled);
  counter('afc_cache_fills_refused_total', 'Fills refused because an eviction or flush came after the lease', () => stats.fillsRefused);
  counter('afc_cache_store_errors_total', 'Store errors on the read path (the database answered instead)', () => stats.storeErrors);
  counter('afc_audit_checks_total', 'Cache hits also compared with the database', () => stats.audit.checked);
  counter('afc_audit_mismatches_total', 'Audited hits that differed from the database', () => stats.audit.mismatches);
  counter('afc_audit_healed_within_1s_total', 'Mismatches gone or fixed at the first re-check', () => stats.audit.healedWithin1s);
  counter('afc_audit_healed_within_10s_total', 'Mismatches gone or fixed at the second re-check', () => stats.audit.healedWithin10s);
  counter('afc_audit_unhealed_total', 'Mismatches still there at the second re-check', () => stats.audit.unhealed);
}
