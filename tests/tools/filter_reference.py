#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/tools/filter_reference.py: an independent reference for the CIS pack (alerts/cis.c): each
# control's intended logic written directly as a Python predicate over the JSON record (no filter
# pattern parser), with the semantics of alerts/filter.h (a comparison on an absent field is
# false; != means "present and different"; * wildcards match the whole value).
#
#   filter_reference.py panther FILE   -> "CONTROL<TAB>index,index,..." for each control, over the
#                                          `log` records of panther_rule_tests_cloudtrail.jsonl
#                                          (index = 0-based line number)
#   filter_reference.py fixtures FILE  -> checks each {"expect": [...], "record": {...}} line
import fnmatch, json, sys

MISSING = object()

def get(rec, path):
    cur = rec
    for k in path.split('.'):
        if not isinstance(cur, dict) or k not in cur:
            return MISSING
        cur = cur[k]
    return cur

def eq(rec, path, pat):
    v = get(rec, path)
    if isinstance(v, bool) or v is None or v is MISSING or isinstance(v, (dict, list)):
        return False
    s = v if isinstance(v, str) else json.dumps(v)
    return fnmatch.fnmatchcase(s, pat.replace('[', '[[]'))

def ne(rec, path, pat):
    return get(rec, path) is not MISSING and not eq(rec, path, pat)

def name_in(rec, names):
    return any(eq(rec, 'eventName', n) for n in names)

CONTROLS = {
 'CIS-4.1': lambda r: (eq(r, 'errorCode', '*UnauthorizedOperation') or eq(r, 'errorCode', 'AccessDenied*'))
        and ne(r, 'sourceIPAddress', 'delivery.logs.amazonaws.com') and ne(r, 'eventName', 'HeadBucket'),
 'CIS-4.2': lambda r: eq(r, 'eventName', 'ConsoleLogin') and ne(r, 'additionalEventData.MFAUsed', 'Yes'),
 'CIS-4.3': lambda r: eq(r, 'userIdentity.type', 'Root') and get(r, 'userIdentity.invokedBy') is MISSING
        and ne(r, 'eventType', 'AwsServiceEvent'),
 'CIS-4.4': lambda r: name_in(r, ['DeleteGroupPolicy', 'DeleteRolePolicy', 'DeleteUserPolicy', 'PutGroupPolicy',
        'PutRolePolicy', 'PutUserPolicy', 'CreatePolicy', 'DeletePolicy', 'CreatePolicyVersion', 'DeletePolicyVersion',
        'AttachRolePolicy', 'DetachRolePolicy', 'AttachUserPolicy', 'DetachUserPolicy', 'AttachGroupPolicy',
        'DetachGroupPolicy']),
 'CIS-4.5': lambda r: name_in(r, ['CreateTrail', 'UpdateTrail', 'DeleteTrail', 'StartLogging', 'StopLogging']),
 'CIS-4.6': lambda r: eq(r, 'eventName', 'ConsoleLogin') and eq(r, 'errorMessage', 'Failed authentication'),
 'CIS-4.7': lambda r: eq(r, 'eventSource', 'kms.amazonaws.com') and name_in(r, ['DisableKey', 'ScheduleKeyDeletion']),
 'CIS-4.8': lambda r: eq(r, 'eventSource', 's3.amazonaws.com') and name_in(r, ['PutBucketAcl', 'PutBucketPolicy',
        'PutBucketCors', 'PutBucketLifecycle', 'PutBucketReplication', 'DeleteBucketPolicy', 'DeleteBucketCors',
        'DeleteBucketLifecycle', 'DeleteBucketReplication']),
 'CIS-4.9': lambda r: eq(r, 'eventSource', 'config.amazonaws.com') and name_in(r, ['StopConfigurationRecorder',
        'DeleteDeliveryChannel', 'PutDeliveryChannel', 'PutConfigurationRecorder']),
 'CIS-4.10': lambda r: name_in(r, ['AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress',
        'RevokeSecurityGroupIngress', 'RevokeSecurityGroupEgress', 'CreateSecurityGroup', 'DeleteSecurityGroup']),
 'CIS-4.11': lambda r: name_in(r, ['CreateNetworkAcl', 'CreateNetworkAclEntry', 'DeleteNetworkAcl',
        'DeleteNetworkAclEntry', 'ReplaceNetworkAclEntry', 'ReplaceNetworkAclAssociation']),
 'CIS-4.12': lambda r: name_in(r, ['CreateCustomerGateway', 'DeleteCustomerGateway', 'AttachInternetGateway',
        'CreateInternetGateway', 'DeleteInternetGateway', 'DetachInternetGateway']),
 'CIS-4.13': lambda r: name_in(r, ['CreateRoute', 'CreateRouteTable', 'ReplaceRoute', 'ReplaceRouteTableAssociation',
        'DeleteRouteTable', 'DeleteRoute', 'DisassociateRouteTable']),
 'CIS-4.14': lambda r: name_in(r, ['CreateVpc', 'DeleteVpc', 'ModifyVpcAttribute', 'AcceptVpcPeeringConnection',
        'CreateVpcPeeringConnection', 'DeleteVpcPeeringConnection', 'RejectVpcPeeringConnection', 'AttachClassicLinkVpc',
        'DetachClassicLinkVpc', 'DisableVpcClassicLink', 'EnableVpcClassicLink']),
 'CIS-4.15': lambda r: eq(r, 'eventSource', 'organizations.amazonaws.com') and name_in(r, ['AcceptHandshake',
        'AttachPolicy', 'CreateAccount', 'CreateOrganizationalUnit', 'CreatePolicy', 'DeclineHandshake',
        'DeleteOrganization', 'DeleteOrganizationalUnit', 'DeletePolicy', 'DetachPolicy', 'DisablePolicyType',
        'EnablePolicyType', 'InviteAccountToOrganization', 'LeaveOrganization', 'MoveAccount',
        'RemoveAccountFromOrganization', 'UpdatePolicy', 'UpdateOrganizationalUnit']),
}

def main():
    mode, path = sys.argv[1], sys.argv[2]
    lines = open(path, encoding='utf-8').read().splitlines()
    if mode == 'panther':
        hits = {c: [] for c in CONTROLS}
        for i, line in enumerate(lines):
            rec = json.loads(line)['log']
            for c, fn in CONTROLS.items():
                if isinstance(rec, dict) and fn(rec):
                    hits[c].append(i)
        for c in CONTROLS:
            print('%s\t%s' % (c, ','.join(map(str, hits[c]))))
    else:
        bad = 0
        for i, line in enumerate(lines):
            if not line.strip() or line.startswith('#'):
                continue
            d = json.loads(line)
            got = sorted(c for c, fn in CONTROLS.items() if fn(d['record']))
            if got != sorted(d['expect']):
                print('line %d: expect %s, reference says %s' % (i + 1, d['expect'], got)); bad = 1
        sys.exit(bad)

main()
