"""Names of the seeding schemes samplers report (``info()["seeding"]``) and sample-stage cache
keys record; kept apart from the samplers so that naming one imports no model library."""

PER_ROW_SEEDING = "per-row-splitmix64-v1"  # emscope.sample.seeded: one random stream per answer
BATCH_SEEDING = "first-seed-per-batch"  # LocalSampler(per_row_seeds=False): a batch's first seed
