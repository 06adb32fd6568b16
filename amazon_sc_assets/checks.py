"""Asset checks that run after each report materialization."""

import dagster as dg

from amazon_sc_assets.assets import MAX_PARTITIONS_PER_RUN, UPSERT_KEY, VERSION_COLUMN

# Consecutive runs whose reports all ended CANCELLED (Amazon's "no data") before
# the check warns. For a seller who normally has orders, such a streak usually means a wrong
# window, wrong marketplace ids or a problem on Amazon's side rather than a quiet week.
CANCELLED_STREAK_WARNING = 3


def _metadata_int(metadata: dict, key: str) -> int | None:
    value = metadata.get(key)
    if value is None:
        return None
    return int(getattr(value, "value", value))


def _latest_metadata(context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey) -> dict:
    """Return the metadata of this run's materialization, else of the latest one.

    Concurrent backfill runs materialize the same asset, so the latest event may be another
    run's. A range run records one event per key, all with the same metadata.
    """
    records = context.instance.fetch_materializations(asset_key, limit=100).records
    own = [r for r in records if r.event_log_entry.run_id == context.run.run_id]
    candidates = own or records
    if not candidates:
        return {}
    record = candidates[0]
    if record.asset_materialization is None:
        return {}
    return dict(record.asset_materialization.metadata)


def build_report_checks(asset: dg.AssetsDefinition) -> list[dg.AssetChecksDefinition]:
    """Build the checks of one report asset."""
    asset_key = asset.key

    @dg.asset_check(
        asset=asset_key,
        name="rows_accounted_for",
        description=(
            "Rows inserted, plus rows skipped because the table already had a newer version, "
            "plus older versions dropped within the batch, equal the rows in the documents."
        ),
    )
    def rows_accounted_for(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        metadata = _latest_metadata(context, asset_key)
        in_documents = _metadata_int(metadata, "rows_in_documents")
        counts = {
            key: _metadata_int(metadata, key)
            for key in ("rows_inserted", "rows_skipped_stale", "rows_superseded_in_batch")
        }
        if in_documents is None or any(value is None for value in counts.values()):
            return dg.AssetCheckResult(
                passed=False,
                description="The latest materialization has no row counts to compare.",
            )

        accounted = sum(counts.values())
        return dg.AssetCheckResult(
            passed=accounted == in_documents,
            metadata={"rows_in_documents": in_documents, "rows_accounted_for": accounted, **counts},
        )

    @dg.asset_check(
        asset=asset_key,
        name="order_lines_share_last_updated_date",
        required_resource_keys={"warehouse_io_manager"},
        description=(
            "Every line of an order in the table carries the same last_updated_date, which the "
            "order-level upsert guarantees."
        ),
    )
    def order_lines_share_version(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        warehouse = context.resources.warehouse_io_manager
        mixed = warehouse.count_keys_with_mixed_versions(
            asset_key, upsert_key=UPSERT_KEY, version_column=VERSION_COLUMN
        )
        return dg.AssetCheckResult(
            passed=mixed == 0, metadata={"orders_with_mixed_versions": mixed}
        )

    @dg.asset_check(
        asset=asset_key,
        name="reports_not_repeatedly_cancelled",
        description=(
            f"Warns when the reports of the last {CANCELLED_STREAK_WARNING} runs all ended "
            "CANCELLED, which Amazon uses for windows without orders."
        ),
    )
    def reports_not_repeatedly_cancelled(
        context: dg.AssetCheckExecutionContext,
    ) -> dg.AssetCheckResult:
        # A range run records one materialization per key, all from one report request, so
        # the streak counts runs, not events. 28 keys is the longest range run.
        records = context.instance.fetch_materializations(
            asset_key, limit=CANCELLED_STREAK_WARNING * MAX_PARTITIONS_PER_RUN
        ).records
        cancelled_runs: list[str] = []
        for record in records:
            run_id = record.event_log_entry.run_id
            if run_id in cancelled_runs:
                continue
            materialization = record.asset_materialization
            statuses = (
                materialization.metadata.get("processing_statuses") if materialization else None
            )
            values = getattr(statuses, "value", statuses) or []
            if not values or any(status != "CANCELLED" for status in values):
                break
            cancelled_runs.append(run_id)
            if len(cancelled_runs) == CANCELLED_STREAK_WARNING:
                break
        streak = len(cancelled_runs)

        return dg.AssetCheckResult(
            passed=streak < CANCELLED_STREAK_WARNING,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"consecutive_cancelled_runs": streak},
        )

    return [rows_accounted_for, order_lines_share_version, reports_not_repeatedly_cancelled]
