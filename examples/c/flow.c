/* The main job end to end through the C ABI: contract, simulation,
 * policies, decision card, usage, a signed bundle stored, read back and
 * verified (smm_run_json), the same run as `smm run` and Python's
 * smm_core.run. Then two failing steps: an expired contract and a halted
 * workspace, each named in the error, neither leaving usage in the ledger.
 *
 *   flow STORE_DIR [KEY_FILE [ENVELOPE_OUT]]
 *
 * KEY_FILE defaults to STORE_DIR/signing-key.pem (made once);
 * ENVELOPE_OUT receives the signed envelope as stored.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -I smm-ffi/include examples/c/flow.c \
 *          target/debug/libsmm.a -lm -lpthread -ldl
 * Run from the repository root. */
#include "smm.h"
#include "example_util.h"

#define NOW "2025-09-01T12:00:00Z"

/* {"contract": C, "campaign": P, "agentRun": A, "now": N} (free it). */
static char *inputs(const char *contract, const char *campaign, const char *run, const char *now) {
    size_t n = strlen(contract) + strlen(campaign) + strlen(run) + strlen(now) + 128;
    char *out = malloc(n);
    if (!out) return NULL;
    snprintf(out, n, "{\"contract\": %s, \"campaign\": %s, \"agentRun\": %s, \"now\": \"%s\"}",
             contract, campaign, run, now);
    return out;
}

/* The committed nano-dollars of the workspace (the "cost_usd" total in the ledger). */
static unsigned long long used_cost(const char *store_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/usage.sqlite", store_dir);
    smm_ledger *ledger = NULL;
    if (smm_ledger_open_existing(path, &ledger) != SMM_OK) return 0;
    uint64_t used = 0;
    smm_status st = smm_ledger_used(ledger, "ws-icblabs-0001", "cost_usd", "total", NOW, &used);
    smm_ledger_free(ledger);
    return st == SMM_OK ? (unsigned long long)used : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: flow STORE_DIR [KEY_FILE [ENVELOPE_OUT]]\n");
        return 2;
    }
    const char *store_dir = argv[1];
    char *contract = read_file("examples/workspace.icblabs.v2.json");
    char *campaign = read_file("examples/campaign.icblabs.json");
    char *run = read_file("examples/agent-run.research.json");
    if (!contract || !campaign || !run) {
        fprintf(stderr, "run from the repository root\n");
        return 2;
    }

    smm_signer *signer = NULL;
    if (argc > 2) {
        smm_status st = smm_local_signer_from_key_file(argv[2], 0, &signer);
        CHECK(st == SMM_OK, "key file: %s", smm_status_name(st));
    }

    /* 1. The whole flow. */
    char *in = inputs(contract, campaign, run, NOW);
    char *result = NULL;
    smm_status st = smm_run_json(in, store_dir, signer, NULL, NULL, 0, &result);
    CHECK(st == SMM_OK, "smm_run_json: %s", smm_status_name(st));
    if (st != SMM_OK) {
        char *msg = smm_last_error_message();
        fprintf(stderr, "%s\n", msg ? msg : "");
        smm_string_free(msg);
    }
    char bundle_id[80] = {0};
    if (result) {
        const char *at = strstr(result, "\"bundleId\":\"");
        if (at) sscanf(at + 12, "%79[^\"]", bundle_id);
        CHECK(strstr(result, "\"verified\":true") != NULL, "not verified");
        CHECK(strstr(result, "\"jobId\":\"research-2025-09-01-launch\"") != NULL, "usage missing");
        printf("bundle %s\nverified\n", bundle_id);
    }
    CHECK(strncmp(bundle_id, "sha256:", 7) == 0, "no bundle id");
    unsigned long long spent = used_cost(store_dir);
    CHECK(spent == 113400000ULL, "ledger has %llu nano-dollars, expected 113400000", spent);

    /* The envelope as stored. */
    smm_file_store *store = NULL;
    st = smm_file_store_open(store_dir, NULL, &store);
    CHECK(st == SMM_OK, "open the store: %s", smm_status_name(st));
    char *envelope = NULL;
    if (store) {
        st = smm_file_store_get(store, bundle_id, &envelope);
        CHECK(st == SMM_OK, "get: %s", smm_status_name(st));
    }
    if (envelope && argc > 3) {
        FILE *f = fopen(argv[3], "wb");
        CHECK(f != NULL, "cannot write %s", argv[3]);
        if (f) {
            fputs(envelope, f);
            fclose(f);
        }
    }

    /* 2. An expired contract: the contract step, nothing recorded. */
    char *late = inputs(contract, campaign, run, "2027-01-01T00:00:00Z");
    char *none = NULL;
    st = smm_run_json(late, store_dir, signer, NULL, NULL, 0, &none);
    CHECK(st == SMM_INVALID_INPUT, "expired: %s", smm_status_name(st));
    CHECK(none == NULL, "no result on failure");
    char *msg = smm_last_error_message();
    CHECK(msg && strncmp(msg, "contract step failed", 20) == 0, "message: %s", msg ? msg : "(null)");
    CHECK(msg && strstr(msg, "/consentRecords/0/expiresAt") != NULL, "no pointer: %s", msg ? msg : "");
    smm_string_free(msg);

    /* 3. A halted workspace: denied at the decision step; the ledger unchanged. */
    char *halted = replaced(contract, "\"halted\": false", "\"halted\": true, \"reason\": \"incident 42\"");
    CHECK(halted != NULL, "no halted flag in the example");
    if (halted) {
        char *in2 = inputs(halted, campaign, run, NOW);
        st = smm_run_json(in2, store_dir, signer, NULL, NULL, 0, &none);
        CHECK(st == SMM_DENIED, "halted: %s", smm_status_name(st));
        msg = smm_last_error_message();
        CHECK(msg && strncmp(msg, "decision step failed", 20) == 0, "message: %s", msg ? msg : "");
        smm_string_free(msg);
        free(in2);
        free(halted);
    }
    CHECK(used_cost(store_dir) == spent, "a failed run changed the ledger");

    /* 4. Hostile input: not an object, an unknown field, no now. */
    CHECK(smm_run_json("[]", store_dir, signer, NULL, NULL, 0, &none) == SMM_INVALID_INPUT, "array");
    CHECK(smm_run_json("{\"contract\": {}, \"now\": \"" NOW "\", \"x\": 1}", store_dir, signer, NULL, NULL, 0,
                       &none) == SMM_INVALID_INPUT,
          "unknown field");
    CHECK(smm_run_json("{\"contract\": {}}", store_dir, signer, NULL, NULL, 0, &none) == SMM_INVALID_INPUT,
          "no now");
    CHECK(smm_run_json(NULL, store_dir, signer, NULL, NULL, 0, &none) == SMM_NULL_ARGUMENT, "NULL");
    CHECK(smm_run_json(in, store_dir, signer, NULL, NULL, 0, NULL) == SMM_NULL_ARGUMENT, "NULL out");

    smm_string_free(envelope);
    smm_file_store_free(store);
    smm_string_free(result);
    smm_signer_free(signer);
    free(late);
    free(in);
    free(contract);
    free(campaign);
    free(run);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
