/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/cis.c: the CIS AWS Foundations Benchmark monitoring controls 4.1-4.15 as data. The
 * published patterns are those of the benchmark's remediation sections (v1.4.0; v1.5-v3.0 keep
 * the same logic); ours differ only where the published one does not do what its title says. */
#include <string.h>

#include "alerts/cis.h"

#define ALARM { "Sum", 300, 1.0, "GreaterThanOrEqualToThreshold", 1, 1, "notBreaching" }
/* A control whose published pattern we evaluate as it is: published and pattern, written once. */
#define SAME(pat) pat, pat

static const struct tw_cis_control controls[] = {
	{ "CIS-4.1", "cis-unauthorized-api-calls", "Unauthorized API calls",
	  "{ ($.errorCode = \"*UnauthorizedOperation\") || ($.errorCode = \"AccessDenied*\") || "
	  "($.sourceIPAddress!=\"delivery.logs.amazonaws.com\") || ($.eventName!=\"HeadBucket\") }",
	  /* The published text joins the two exclusions with '||': since nearly every record has a
	   * sourceIPAddress other than delivery.logs.amazonaws.com, it matches nearly every event.
	   * The intent (the benchmark's prose, and its earlier two-clause form) is: an authorization
	   * failure, except the S3 log-delivery service and HeadBucket probes. */
	  "{ (($.errorCode = \"*UnauthorizedOperation\") || ($.errorCode = \"AccessDenied*\")) && "
	  "($.sourceIPAddress != \"delivery.logs.amazonaws.com\") && ($.eventName != \"HeadBucket\") }",
	  "the published '||' before the two '!=' exclusions makes it match nearly every event; they must be '&&'",
	  "unauthorized_api_calls_metric", "CISBenchmark", ALARM },
	{ "CIS-4.2", "cis-console-signin-without-mfa", "Management console sign-in without MFA",
	  SAME("{ ($.eventName = \"ConsoleLogin\") && ($.additionalEventData.MFAUsed != \"Yes\") }"),
	  NULL, "no_mfa_console_signin_metric", "CISBenchmark", ALARM },
	{ "CIS-4.3", "cis-root-account-usage", "Usage of the root account",
	  SAME("{ $.userIdentity.type = \"Root\" && $.userIdentity.invokedBy NOT EXISTS && "
	  "$.eventType != \"AwsServiceEvent\" }"),
	  NULL, "root_usage_metric", "CISBenchmark", ALARM },
	{ "CIS-4.4", "cis-iam-policy-changes", "IAM policy changes",
	  SAME("{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||"
	  "($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||"
	  "($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||"
	  "($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||"
	  "($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||"
	  "($.eventName=DetachGroupPolicy)}"),
	  NULL, "iam_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.5", "cis-cloudtrail-config-changes", "CloudTrail configuration changes",
	  SAME("{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || "
	  "($.eventName = StartLogging) || ($.eventName = StopLogging) }"),
	  NULL, "cloudtrail_cfg_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.6", "cis-console-auth-failures", "Management console authentication failures",
	  SAME("{ ($.eventName = ConsoleLogin) && ($.errorMessage = \"Failed authentication\") }"),
	  NULL, "console_signin_failure_metric", "CISBenchmark", ALARM },
	{ "CIS-4.7", "cis-cmk-disable-or-deletion", "Disabling or scheduled deletion of customer created CMKs",
	  SAME("{($.eventSource = kms.amazonaws.com) && (($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }"),
	  NULL, "disable_or_delete_cmk_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.8", "cis-s3-bucket-policy-changes", "S3 bucket policy changes",
	  SAME("{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || "
	  "($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || "
	  "($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || "
	  "($.eventName = DeleteBucketReplication)) }"),
	  NULL, "s3_bucket_policy_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.9", "cis-config-changes", "AWS Config configuration changes",
	  SAME("{ ($.eventSource = config.amazonaws.com) && (($.eventName=StopConfigurationRecorder)||"
	  "($.eventName=DeleteDeliveryChannel) ||($.eventName=PutDeliveryChannel)||($.eventName=PutConfigurationRecorder)) }"),
	  NULL, "aws_config_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.10", "cis-security-group-changes", "Security group changes",
	  SAME("{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || "
	  "($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || "
	  "($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }"),
	  NULL, "security_group_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.11", "cis-nacl-changes", "Network Access Control List (NACL) changes",
	  SAME("{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || "
	  "($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || "
	  "($.eventName = ReplaceNetworkAclAssociation) }"),
	  NULL, "nacl_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.12", "cis-network-gateway-changes", "Changes to network gateways",
	  SAME("{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || "
	  "($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || "
	  "($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"),
	  NULL, "network_gw_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.13", "cis-route-table-changes", "Route table changes",
	  SAME("{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || "
	  "($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || "
	  "($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"),
	  NULL, "route_table_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.14", "cis-vpc-changes", "VPC changes",
	  SAME("{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || "
	  "($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || "
	  "($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || "
	  "($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || "
	  "($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"),
	  NULL, "vpc_changes_metric", "CISBenchmark", ALARM },
	{ "CIS-4.15", "cis-organizations-changes", "AWS Organizations changes",
	  SAME("{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = \"AcceptHandshake\") || "
	  "($.eventName = \"AttachPolicy\") || ($.eventName = \"CreateAccount\") || ($.eventName = \"CreateOrganizationalUnit\") || "
	  "($.eventName = \"CreatePolicy\") || ($.eventName = \"DeclineHandshake\") || ($.eventName = \"DeleteOrganization\") || "
	  "($.eventName = \"DeleteOrganizationalUnit\") || ($.eventName = \"DeletePolicy\") || ($.eventName = \"DetachPolicy\") || "
	  "($.eventName = \"DisablePolicyType\") || ($.eventName = \"EnablePolicyType\") || "
	  "($.eventName = \"InviteAccountToOrganization\") || ($.eventName = \"LeaveOrganization\") || "
	  "($.eventName = \"MoveAccount\") || ($.eventName = \"RemoveAccountFromOrganization\") || "
	  "($.eventName = \"UpdatePolicy\") || ($.eventName = \"UpdateOrganizationalUnit\")) }"),
	  NULL, "organizations_changes_metric", "CISBenchmark", ALARM },
};

const struct tw_cis_control *tw_cis_controls(size_t *n)
{
	*n = sizeof controls / sizeof controls[0];
	return controls;
}

const struct tw_cis_control *tw_cis_lookup(const char *s)
{
	for (size_t i = 0; i < sizeof controls / sizeof controls[0]; i++)
		if (!strcmp(controls[i].id, s) || !strcmp(controls[i].id + 4, s) || !strcmp(controls[i].name, s))
			return &controls[i];
	return NULL;
}
