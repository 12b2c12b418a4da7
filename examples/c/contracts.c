/*
 * Workspace contracts from C: canonical JSON, the terms hash, validation,
 * the CI gate for a change, lifecycle moves and chain verification.
 * Run from the repository root (see scripts/test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smm.h"
#include "example_util.h"


static char *last_error(void) {
    char *m = smm_last_error_message();
    return m;
}

int main(void) {
    char *v1_text = read_file("examples/workspace.icblabs.v1.json");
    char *v2_text = read_file("examples/workspace.icblabs.v2.json");
    if (!v1_text || !v2_text) {
        fprintf(stderr, "run from the repository root\n");
        return 2;
    }

    /* Canonical JSON. */
    char *canon = NULL;
    CHECK(smm_canonicalize_json("{\"b\": 1.0e0, \"a\": [true, \"\\u0041\"]}", &canon) == SMM_OK, "canonicalize");
    CHECK(canon && strcmp(canon, "{\"a\":[true,\"A\"],\"b\":1}") == 0, "canonical form: %s", canon ? canon : "");
    smm_string_free(canon);
    canon = NULL;
    smm_status st = smm_canonicalize_json("{\"id\": 9007199254740993}", &canon);
    char *msg = last_error();
    CHECK(st == SMM_INVALID_INPUT && canon == NULL && msg && strstr(msg, "/id"), "inexact integer refused");
    printf("9007199254740993 -> %s: %s\n", smm_status_name(st), msg ? msg : "");
    smm_string_free(msg);
    st = smm_canonicalize_json("{\"a\": 1, \"a\": 2}", &canon);
    CHECK(st == SMM_INVALID_INPUT, "duplicate key refused");
    int32_t is_canon = -1;
    CHECK(smm_is_canonical_json("{\"a\":[true,\"A\"],\"b\":1}", &is_canon) == SMM_OK && is_canon == 1,
          "canonical text judged canonical");
    CHECK(smm_is_canonical_json("{\"b\": 1, \"a\": 2}", &is_canon) == SMM_OK && is_canon == 0,
          "unsorted, spaced text judged not canonical");
    CHECK(smm_is_canonical_json("{\"a\": 1, \"a\": 2}", &is_canon) == SMM_INVALID_INPUT,
          "no canonical form: an error, as for smm_canonicalize_json");

    /* v1 -> v2 migration, hashes, the chain. */
    char *v1 = NULL, *h1 = NULL, *h2 = NULL;
    CHECK(smm_contract_migrate_v1_json(v1_text, &v1) == SMM_OK, "migrate v1");
    CHECK(smm_contract_hash_json(v1, &h1) == SMM_OK, "hash v1");
    CHECK(smm_contract_hash_json(v2_text, &h2) == SMM_OK, "hash v2");
    CHECK(h1 && strstr(v2_text, h1) != NULL, "v2 points at the v1 terms hash");
    printf("v1 terms hash %s\nv2 terms hash %s\n", h1 ? h1 : "", h2 ? h2 : "");
    st = smm_contract_hash_json(v1_text, &h2);
    CHECK(st == SMM_INVALID_INPUT, "an unmigrated v1 contract is refused");

    /* Validation at a given time. */
    char *violations = NULL;
    CHECK(smm_contract_validate_json(v2_text, "2025-09-01T00:00:00Z", &violations) == SMM_OK, "validate");
    CHECK(violations && strstr(violations, "\"severity\":\"error\"") == NULL, "v2 example has no error: %s", violations ? violations : "");
    smm_string_free(violations);
    violations = NULL;
    char *bad = replaced(v2_text, "\"currency\": \"USD\"", "\"currency\": \"usd\"");
    CHECK(bad && smm_contract_validate_json(bad, "2025-09-01T00:00:00Z", &violations) == SMM_OK, "validate bad");
    CHECK(violations && strstr(violations, "/budget/currency"), "violation names /budget/currency");
    printf("violations of a lower-case currency: %s\n", violations ? violations : "");
    smm_string_free(violations);
    free(bad);

    /* The CI gate. */
    char *result = NULL;
    CHECK(smm_contract_check_change_json(v1, v2_text, &result) == SMM_OK, "v1 -> v2 is a proper new version");
    CHECK(result && strstr(result, "\"kind\":\"newVersion\""), "newVersion: %s", result ? result : "");
    smm_string_free(result);
    result = NULL;
    char *edited = replaced(v2_text, "\"hardCap\": 5000", "\"hardCap\": 9000");
    st = smm_contract_check_change_json(v2_text, edited, &result);
    msg = last_error();
    CHECK(st == SMM_CONTRACT_REJECTED && result == NULL, "editing a signed contract in place is refused");
    CHECK(msg && strstr(msg, "immutability violation") && strstr(msg, "/budget/hardCap"), "message: %s", msg ? msg : "");
    printf("edit in place -> %s: %s\n", smm_status_name(st), msg ? msg : "");
    smm_string_free(msg);
    free(edited);

    /* Lifecycle. */
    char *moved = NULL;
    CHECK(smm_contract_transition_json(v2_text, "provisioning", &moved) == SMM_OK, "signed -> provisioning");
    CHECK(moved && strstr(moved, "\"lifecycle\":\"provisioning\""), "moved");
    char *back = NULL;
    CHECK(smm_contract_transition_json(moved, "draft", &back) == SMM_LIFECYCLE_REJECTED, "provisioning -> draft is illegal");
    smm_string_free(moved);

    /* Chain verification. */
    size_t n = strlen(v1) + strlen(v2_text) + 4;
    char *chain = malloc(n);
    if (chain) {
        snprintf(chain, n, "[%s,%s]", v1, v2_text);
        char *report = NULL;
        CHECK(smm_contract_verify_chain_json(chain, &report) == SMM_OK, "verify chain");
        CHECK(report && strstr(report, "\"valid\":true"), "chain valid: %s", report ? report : "");
        smm_string_free(report);
        report = NULL;
        snprintf(chain, n, "[%s]", v2_text);
        CHECK(smm_contract_verify_chain_json(chain, &report) == SMM_OK, "verify partial chain");
        CHECK(report && strstr(report, "missingVersion"), "missing v1 detected: %s", report ? report : "");
        smm_string_free(report);
        free(chain);
    }

    smm_string_free(v1);
    smm_string_free(h1);
    smm_string_free(h2);
    free(v1_text);
    free(v2_text);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("C contracts example: all checks passed\n");
    return 0;
}
