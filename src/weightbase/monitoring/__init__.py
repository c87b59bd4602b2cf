"""Production monitoring: drift, samples, degradation, alerts and health."""
