"""The daily schedule (running by default) and the hourly one (stopped by default).

Both are written as plain `@dg.schedule`s because `build_schedule_from_partitioned_job` on
partitions with end_offset=1 requests today's key, and the daily run wants yesterday's.
"""

import dagster as dg

# Yesterday's key covers the 72 hours that end at today's midnight UTC. Amazon makes orders
# visible in the reports up to about 30 minutes late. The next day's window overlaps this one
# by 48 hours, so it re-reads anything that arrives later.
DAILY_CRON = "30 0 * * *"
HOURLY_CRON = "15 * * * *"


def build_schedules(
    job_name: str, partitions_def: dg.DailyPartitionsDefinition
) -> list[dg.ScheduleDefinition]:
    """Build the daily and hourly schedules for the job of the enabled report assets."""

    @dg.schedule(
        name="amazon_seller_central_daily",
        job_name=job_name,
        cron_schedule=DAILY_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Materializes yesterday's key (the 72 hours ending at 00:00 UTC today) shortly "
            "after midnight UTC."
        ),
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
            # With end_offset=1 the last key is today's, so yesterday's is the one before it.
            yesterday = partitions_def.get_partition_keys()[-2]
        return dg.RunRequest(run_key=yesterday, partition_key=yesterday)

    @dg.schedule(
        name="amazon_seller_central_hourly",
        job_name=job_name,
        cron_schedule=HOURLY_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            "Materializes today's key (the 72 hours ending now) every hour. Stopped by default: "
            "start it in the UI when you need intraday freshness."
        ),
    )
    def hourly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        at = context.scheduled_execution_time
        with dg.partition_loading_context(effective_dt=at):
            today = partitions_def.get_last_partition_key()
        return dg.RunRequest(
            run_key=f"{today}T{at:%H}",
            partition_key=today,
            tags={"amazon_sc_assets/cadence": "hourly"},
        )

    return [daily_schedule, hourly_schedule]
