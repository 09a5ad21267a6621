"""EnvironmentBudget: an AWS Budgets cost budget for one environment, alerting at 80% and 100%."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_sns as sns
from constructs import Construct

ALERT_THRESHOLDS = (80, 100)  # percent of the monthly amount, actual spend


class EnvironmentBudget(Construct):
    """A monthly USD budget over the resources tagged ``environment=<name>``.

    The filter uses the ``environment`` cost allocation tag every resource carries; activate it once
    per payer account (Billing console, Cost allocation tags) or the budget sees no spend.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        budget_name: str,
        environment: str,
        monthly_amount: float,
        emails: Sequence[str] = (),
        topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id)
        if monthly_amount <= 0:
            raise ValueError(f"monthly_amount: must be positive, got {monthly_amount}")
        if not emails and topic is None:
            raise ValueError("emails/topic: a budget alert needs at least one recipient (cost.budget_emails or an alert topic)")
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=a) for a in emails]
        if topic is not None:
            subscribers.append(budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn))
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_amount, unit="USD"),
                cost_filters={"TagKeyValue": [f"user:environment${environment}"]},
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        comparison_operator="GREATER_THAN",
                        notification_type="ACTUAL",
                        threshold=threshold,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for threshold in ALERT_THRESHOLDS
            ],
        )
