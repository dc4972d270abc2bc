#!/usr/bin/env python3
"""Summarise a schemathesis JSON report; in --ims-spec mode, allow only the listed departures.

Usage: ims_departures.py REPORT.json [--ims-spec]

Without --ims-spec (the run against ims's own docs/openapi.yaml) every failure and every error counts.
With --ims-spec (the run against IMS's verbatim spec, Tests/API/ims-openapi.yaml) a failure is allowed only when
an entry of DEPARTURES names its code and matches its operation and, when the entry has a `detail` pattern, every
failing test case of that code and operation (read from junit.xml beside the JSON report: the messages, response
and request the JSON report leaves out) matches it; every allowed failure is printed with the entry's reason, and a departure
that matched nothing is reported (so the list can be tightened). Each failure that is not allowed is printed with
its first test case (schemathesis's message, the response and a curl command to reproduce it).
Prints "N passed, M failed" last (operations without an unallowed failure pass) and exits 1 on any failure.
"""
import json
import os
import re
import sys
import xml.etree.ElementTree as ElementTree

# Where ims deliberately answers differently from what IMS's published document says. Each entry: the schemathesis
# failure codes it allows, a regular expression over "METHOD /path" (paths as IMS's spec writes them), optionally a
# regular expression every failing case's message must match (`detail`), and why.
# The numbers refer to the corrections listed in docs/openapi.yaml's info.description.
ANY_BODY_OP = r"^(POST|PATCH) "
DEPARTURES = [
    {"codes": {"ST105"}, "operation": r".*",
     "reason": "1: errors are application/problem+json, as IMS's server sends them; IMS's spec says application/json"},
    {"codes": {"ST103"}, "operation": ANY_BODY_OP,
     "reason": "2: 400 (empty or falsy body), 413 (too large), 415 (no JSON Content-Type) and 422 are answered on "
               "every operation with a body; IMS's spec leaves several out"},
    {"codes": {"ST103"}, "operation": r"^DELETE /(v2/)?(recipes|images|jobs)(/\{[a-z_]+\})?$|^DELETE /v3/jobs$",
     "reason": "2, 15: a bad cascade, status, job_type or age value is a 400; IMS's spec documents no 400 there"},
    {"codes": {"ST103"}, "operation": r"^GET /(v2/|v3/)?(recipes|jobs)/\{[a-z_]+\}$|^GET /v3/deleted/recipes/\{recipe_id\}$",
     "reason": "2: IMS's spec lists no 500 on these GETs; only relevant if the store fails"},
    {"codes": {"ST103"}, "operation": r"^GET /v3/remote-build-nodes/status/\{remote_build_node_xname\}$",
     "reason": "6: an unregistered xname is a 404; IMS's spec documents none"},
    {"codes": {"ST108"}, "operation": r"^GET /version$",
     "reason": "3: /version answers {\"version\": ...}; IMS's spec says a bare string"},
    {"codes": {"ST108"}, "operation": r"^GET /v3/remote-build-nodes/status/\{remote_build_node_xname\}$",
     "reason": "6: one status object, not an array"},
    {"codes": {"ST108"}, "operation": r"^(GET|POST|PATCH|DELETE) /(v2/|v3/)?(jobs)(/\{job_id\})?$",
     "reason": "4, 5: job records may carry status packaging_artifacts and null resultant_image_id / kubernetes_* "
               "names, which IMS's JobRecord schema does not allow"},
    {"codes": {"ST108"}, "operation": r"^(GET|POST|PATCH) /(v2/|v3/)?(deleted/)?(recipes|images)(/\{[a-z_]+\})?$",
     "reason": "5, 16: link is null on records without one; linux_distribution and link type take ims's wider "
               "values (IMS's schema: an object, and IMS's three distributions / s3 only)"},
    {"codes": {"ST202"}, "operation": ANY_BODY_OP, "detail": r"\[422\].*Unknown field\.",
     "reason": "8: unknown fields are refused with 422, as IMS's server does (marshmallow unknown=RAISE); IMS's spec "
               "does not say additionalProperties: false, so generated bodies with extra keys are 'valid' to it"},
    {"codes": {"ST202"}, "operation": ANY_BODY_OP, "detail": r"\[400\].*No input provided",
     "reason": "2: an empty or falsy body ({}) is a 400, as IMS's server answers it; to IMS's spec {} is a valid "
               "body where no field is required"},
    {"codes": {"ST202"}, "operation": r"^PATCH /v3/deleted/", "detail": r"\[422\].*\"operation\":\[",
     "reason": "11: an undelete body must be exactly {\"operation\": \"undelete\"}; IMS's spec makes operation optional"},
    {"codes": {"ST202"}, "operation": r"^DELETE /(v2/|v3/)?jobs$", "detail": r"\[400\].*is not an age",
     "reason": "15: an age that is not a sum of <n>w/d/h/m terms is a 400 (IMS would delete every job)"},
    {"codes": {"ST202"}, "operation": r"^POST /(v2/|v3/)?public-keys$", "detail": r"\[422\].*\"public_key\":\[",
     "reason": "17: public_key must be a real authorized_keys line; IMS's spec takes any string"},
    {"codes": {"ST202"}, "operation": r"^POST /(v2/|v3/)?jobs$",
     "detail": r"\[422\].*\"(build_env_size|job_mem_size)\":\[\"Must be greater than or equal to 1 and less than",
     "reason": "9: build_env_size and job_mem_size are at most 1048576 GiB; IMS's spec sets no bound, and a number "
               "beyond what a record holds exactly is refused rather than stored rounded"},
    {"codes": {"ST201"}, "operation": r"^(POST|PATCH) /(v2/|v3/)?images(/\{image_id\})?$",
     "detail": r"Invalid component: in body - metadata\b",
     "reason": "10: image metadata may be a plain string map on POST; IMS's spec allows only the {key, value} pair"},
    {"codes": {"ST201"}, "operation": r"^(POST|PATCH) /(v2/|v3/)?(recipes|images)(/\{[a-z_]+\})?$",
     "detail": r"Invalid component: in body - link: Incorrect type",
     "reason": "5: a link may be null in a request as in a record (\"link\": null is no link), as IMS's server "
               "takes it (ims-behaviour 3.4, 3.5: ArtifactLink or null); IMS's spec types link as an object only"},
]


def departure_for(code, operation, text):
    """The first departure allowing a failure of `code` on `operation` whose message is `text` (None: unknown)."""
    for departure in DEPARTURES:
        if code not in departure["codes"] or not re.search(departure["operation"], operation):
            continue
        pattern = departure.get("detail")
        if pattern and (text is None or not re.search(pattern, text, re.S)):
            continue
        return departure
    return None


def allowed(code, operation, cases):
    """The departures that allow every failing case of `code` on `operation`, or None when one case is not allowed.
    Without the cases' messages, only a departure without a `detail` pattern can allow the failure."""
    found = []
    for text in cases or [None]:
        departure = departure_for(code, operation, text)
        if departure is None:
            return None
        if departure not in found:
            found.append(departure)
    return found


def junit_details(report_path):
    """{(operation, code): [each failing test case that has a failure of that code]} from junit.xml beside the JSON
    report: a test case's text is schemathesis's messages for every check it failed, then the response and a curl
    command to reproduce it (schemathesis keeps the first case of each distinct failure)."""
    details = {}
    path = os.path.join(os.path.dirname(os.path.abspath(report_path)), "junit.xml")
    if not os.path.exists(path):
        return details
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        for failure in case:
            for text in re.split(r"(?m)^(?=\d+\. Test Case ID)", failure.text or ""):
                for code in sorted(set(re.findall(r"(?m)^- (ST\d{3}) ", text))):
                    details.setdefault((case.attrib.get("name", ""), code), []).append(text.strip())
    return details


def main():
    args = sys.argv[1:]
    ims_mode = "--ims-spec" in args
    paths = [a for a in args if not a.startswith("--")]
    if len(paths) != 1:
        sys.stderr.write(__doc__)
        return 2
    report = json.load(open(paths[0]))
    ops = report.get("operations", {})
    print(f"schemathesis {report.get('schemathesis_version')}: seed {report.get('seed')}, "
          f"{ops.get('tested', 0)} of {ops.get('selected', 0)} operations tested, "
          f"{report.get('test_cases', {}).get('generated', 0)} test cases, "
          f"{report.get('running_time', 0):.0f} s, stop reason {report.get('stop_reason')}")
    details = junit_details(paths[0])
    bad, ok_departures, used = [], [], set()
    for failure in report.get("failures", []):
        for operation in failure.get("operations", []):
            cases = details.get((operation, failure["code"]), [])
            departures = allowed(failure["code"], operation, cases) if ims_mode else None
            if departures:
                for departure in departures:
                    used.add(id(departure))
                    ok_departures.append((failure["code"], failure["title"], operation, departure["reason"]))
            else:
                bad.append((failure["code"], failure["title"], operation, cases))
    errors = report.get("errors", [])
    if ok_departures:
        print(f"\nallowed departures from IMS's spec ({len(ok_departures)} failures):")
        by_reason = {}
        for code, title, operation, reason in ok_departures:
            by_reason.setdefault(reason, []).append(f"{code} {operation}")
        for reason, hits in by_reason.items():
            print(f"  because {reason}:\n      " + ", ".join(hits))
    if ims_mode:
        unused = [d for d in DEPARTURES if id(d) not in used]
        if unused:
            print(f"\ndepartures that matched nothing this run ({len(unused)}):")
            for d in unused:
                print(f"  {sorted(d['codes'])} {d['operation']}")
    if bad:
        print(f"\nfailures ({len(bad)}):")
        for code, title, operation, cases in bad:
            print(f"  {code} {title}: {operation}")
        print("\nthe first failing case of each (the whole log has them all):")
        for code, title, operation, cases in bad:
            print(f"\n  {operation}:")
            text = cases[0] if cases else f"- {code} {title} (no details in junit.xml)"
            print("    " + "\n    ".join(line for line in text.splitlines() if line.strip())[:3000])
    if errors:
        print(f"\nerrors ({len(errors)}):")
        for error in errors:
            print(f"  {json.dumps(error)[:300]}")
    failed_ops = {operation for _, _, operation, _ in bad}
    tested = max(ops.get("tested", 0), len(failed_ops))
    complete = report.get("complete", True) and report.get("stop_reason") in (None, "completed")
    failed = len(failed_ops) + len(errors) + (0 if complete else 1)
    if not complete:
        print(f"\nthe run did not complete (stop reason {report.get('stop_reason')})")
    print(f"{tested - len(failed_ops)} passed, {failed} failed")
    return 1 if failed or tested == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
