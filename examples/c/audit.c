/*
 * Audit bundles from C: assemble a bundle from a contract, a simulation and
 * a trail; sign it with a local key and with an external (host callback)
 * signer; verify it offline; see tampering fail; store it on disk.
 * Run from the repository root (see scripts/test).
 */
#define _POSIX_C_SOURCE 200809L
#include <sys/stat.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smm.h"
#include "example_util.h"


/* A JSON string literal of `s` (escapes quotes, backslashes, newlines). */
static char *json_string(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(2 * n + 3);
    if (!out) return NULL;
    char *p = out;
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') { *p++ = '\\'; *p++ = *s; }
        else if (*s == '\n') { *p++ = '\\'; *p++ = 'n'; }
        else *p++ = *s;
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

/* The "KMS": a signer passed as userdata, as a host would wrap its cloud SDK. */
static int32_t kms_sign(void *userdata, const uint8_t *digest, uint8_t *sig, size_t cap, size_t *len) {
    return smm_signer_sign_digest((const smm_signer *)userdata, digest, sig, cap, len) == SMM_OK ? 0 : 1;
}

/* A broken KMS that answers garbage. */
static int32_t broken_sign(void *userdata, const uint8_t *digest, uint8_t *sig, size_t cap, size_t *len) {
    (void)userdata; (void)digest;
    if (cap < 3) return 1;
    sig[0] = 1; sig[1] = 2; sig[2] = 3;
    *len = 3;
    return 0;
}

static char *trusted_json(const char *key_id, const smm_signer *s) {
    char *pem = NULL;
    if (smm_signer_public_key_pem(s, &pem) != SMM_OK) return NULL;
    char *q = json_string(pem);
    smm_string_free(pem);
    if (!q) return NULL;
    size_t n = strlen(q) + strlen(key_id) + 64;
    char *out = malloc(n);
    if (out) snprintf(out, n, "[{\"keyId\":\"%s\",\"publicKey\":%s}]", key_id, q);
    free(q);
    return out;
}

int main(void) {
    char *contract = read_file("examples/workspace.icblabs.v2.json");
    char *request = read_file("examples/icblabs-seed42.request.json");
    if (!contract || !request) { fprintf(stderr, "run from the repository root\n"); return 2; }

    char *report = NULL;
    CHECK(smm_simulate_json(request, 1, &report) == SMM_OK, "simulate");
    /* The default policy bundle decides; the card is built from the decision. */
    char *policy_input = read_file("examples/policy-input.icblabs.json");
    smm_policy_bundle *policies = NULL;
    char *decision = NULL, *card = NULL;
    CHECK(smm_policy_bundle_default(&policies) == SMM_OK, "default bundle");
    CHECK(smm_policy_evaluate_json(policies, policy_input, &decision) == SMM_OK, "evaluate");
    CHECK(smm_decision_card_json(report, decision, contract, &card) == SMM_OK, "decision card");
    const char *trail =
        "[{\"timestamp\":\"2025-09-01T12:00:00Z\",\"event\":\"bundle_created\",\"actor\":\"system\",\"details\":{}},"
        "{\"timestamp\":\"2025-09-01T12:00:01Z\",\"event\":\"simulation_executed\",\"actor\":\"system\",\"details\":{}},"
        "{\"timestamp\":\"2025-09-01T12:00:02Z\",\"event\":\"bundle_sealed\",\"actor\":\"system\",\"details\":{}}]";
    size_t n = strlen(contract) + (report ? strlen(report) : 0) + (decision ? strlen(decision) : 0) +
               (card ? strlen(card) : 0) + strlen(trail) + 512;
    char *inputs = malloc(n);
    if (!inputs) return 2;
    snprintf(inputs, n,
             "{\"contract\":%s,\"createdAt\":\"2025-09-01T12:00:00Z\",\"simulation\":%s,"
             "\"policyDecision\":%s,\"decisionCard\":%s,"
             "\"agentRuns\":[],\"auditTrail\":%s}",
             contract, report ? report : "null", decision ? decision : "null", card ? card : "null", trail);
    smm_string_free(decision);
    smm_string_free(card);
    free(policy_input);
    smm_policy_bundle_free(policies);
    char *bundle = NULL;
    smm_status st = smm_bundle_assemble_json(inputs, &bundle);
    CHECK(st == SMM_OK, "assemble: %s", smm_status_name(st));
    if (st != SMM_OK) { char *m = smm_last_error_message(); fprintf(stderr, "%s\n", m ? m : ""); smm_string_free(m); }

    /* Local key. */
    smm_signer *local = NULL;
    CHECK(smm_local_signer_generate("local-key-1", &local) == SMM_OK, "generate");
    char *envelope = NULL;
    CHECK(smm_bundle_sign_json(bundle, local, &envelope) == SMM_OK, "sign");
    char *trusted = trusted_json("local-key-1", local);
    char *result = NULL;
    CHECK(smm_bundle_verify_json(envelope, trusted, &result) == SMM_OK, "verify");
    CHECK(result && strstr(result, "\"verified\":true"), "verified: %s", result ? result : "");
    printf("signed %zu-byte envelope; verification: %.80s...\n", envelope ? strlen(envelope) : 0, result ? result : "");
    smm_string_free(result);
    result = NULL;

    /* Tampering with one byte breaks it. */
    if (envelope) {
        char *t = strdup(envelope);
        size_t mid = strlen(t) / 2;
        t[mid] = (char)(t[mid] == 'A' ? 'B' : 'A');
        CHECK(smm_bundle_verify_json(t, trusted, &result) == SMM_OK, "verify tampered");
        CHECK(result && strstr(result, "\"verified\":false"), "tampered must not verify");
        smm_string_free(result);
        result = NULL;
        free(t);
    }

    /* External signer: the host's callback with userdata. */
    char *pem = NULL;
    CHECK(smm_signer_public_key_pem(local, &pem) == SMM_OK, "pem");
    smm_signer *kms = NULL, *broken = NULL;
    CHECK(smm_external_signer_new("arn:aws:kms:eu-west-1:111:key/demo", pem, kms_sign, local, &kms) == SMM_OK, "external");
    char *env2 = NULL;
    CHECK(smm_bundle_sign_json(bundle, kms, &env2) == SMM_OK, "external sign");
    char *trusted2 = trusted_json("arn:aws:kms:eu-west-1:111:key/demo", local);
    CHECK(smm_bundle_verify_json(env2, trusted2, &result) == SMM_OK && result && strstr(result, "\"verified\":true"), "external verified");
    smm_string_free(result);
    result = NULL;
    CHECK(smm_external_signer_new("key-broken", pem, broken_sign, NULL, &broken) == SMM_OK, "broken signer");
    char *env3 = NULL;
    st = smm_bundle_sign_json(bundle, broken, &env3);
    char *msg = smm_last_error_message();
    CHECK(st == SMM_SIGNER_FAILED && env3 == NULL && msg && strstr(msg, "key-broken"), "bad answer refused");
    printf("broken KMS -> %s: %s\n", smm_status_name(st), msg ? msg : "");
    smm_string_free(msg);

    /* Low-level verify: the DSSE specification's vector (P1363). */
    static const uint8_t pub[65] = {0x04,0x67,0xcd,0x39,0x0f,0x77,0xaa,0x35,0x9c,0xb0,0x8c,0x22,0x35,0xf6,0x52,0x27,0x04,0x93,0xa9,0xed,0x83,0x2b,0x0a,0xbc,0xc0,0x1f,0x70,0x95,0x4c,0x03,0x90,0xd2,0x38,0x0c,0x78,0x2b,0xd5,0x4e,0x26,0x91,0x25,0xa4,0x4f,0x44,0x33,0xaf,0xf1,0x43,0x2c,0xe9,0x4e,0x12,0xbc,0xa7,0x3a,0xa6,0x7a,0xc8,0x0c,0xea,0x12,0x60,0x8d,0xdf,0x74};
    static const uint8_t sig[64] = {0x03,0x72,0x6a,0xb1,0x01,0xad,0x56,0xc2,0x76,0x3b,0x6c,0x6a,0xac,0x8e,0x48,0x72,0x75,0xe2,0xa7,0x91,0x93,0xa0,0x9d,0xc5,0xf8,0x59,0xd9,0xf8,0xef,0x3c,0x4a,0x3b,0x51,0xea,0xb0,0xc0,0x6a,0x36,0x9b,0x64,0xa7,0x22,0x25,0x37,0xd4,0x88,0x7a,0x89,0x3d,0xc2,0x00,0xae,0x21,0x06,0x00,0x74,0xd5,0x78,0x25,0x23,0x5b,0x62,0x48,0x64};
    const char *pae = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
    int32_t valid = -1;
    CHECK(smm_ecdsa_p256_verify(pub, sizeof pub, (const uint8_t *)pae, strlen(pae), sig, sizeof sig, 1, &valid) == SMM_OK && valid == 1, "DSSE vector verifies");
    CHECK(smm_ecdsa_p256_verify(pub, sizeof pub, (const uint8_t *)pae, strlen(pae) - 1, sig, sizeof sig, 1, &valid) == SMM_OK && valid == 0, "other message does not");

    /* Storage. */
    char dir[] = "/tmp/smm-c-store-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    smm_file_store *store = NULL;
    /* Read-only without trusted keys. */
    CHECK(smm_file_store_open(dir, NULL, &store) == SMM_OK, "open read-only");
    char *id = NULL, *id2 = NULL, *got = NULL, *list = NULL;
    CHECK(smm_file_store_put(store, envelope, &id) == SMM_STORAGE && id == NULL, "a read-only store refuses put");
    smm_file_store_free(store);
    store = NULL;
    CHECK(smm_file_store_open(dir, trusted, &store) == SMM_OK, "open store");
    CHECK(smm_file_store_put(store, envelope, &id) == SMM_OK, "put");
    CHECK(smm_file_store_put(store, envelope, &id2) == SMM_OK, "put again is a no-op");
    CHECK(smm_file_store_put(store, env2, &got) == SMM_UNTRUSTED && got == NULL, "a key the store does not trust is refused");
    CHECK(smm_file_store_get(store, id, &got) == SMM_OK && got && strcmp(got, envelope) == 0, "get");
    smm_string_free(got);
    got = NULL;
    /* A store trusting the KMS key adds its signature to the stored bundle. */
    smm_file_store *store2 = NULL;
    CHECK(smm_file_store_open(dir, trusted2, &store2) == SMM_OK, "open with the KMS key");
    smm_string_free(id2);
    id2 = NULL;
    CHECK(smm_file_store_put(store2, env2, &id2) == SMM_OK && id2 && strcmp(id2, id) == 0, "the KMS signature is added");
    CHECK(smm_file_store_get(store2, id, &got) == SMM_OK && got && strstr(got, "local-key-1") && strstr(got, "key/demo"), "both signatures stored");
    CHECK(smm_file_store_history_json(store2, id, &list) == SMM_OK && list && strstr(list, "signatures_added"), "history");
    smm_string_free(list);
    list = NULL;
    smm_file_store_free(store2);
    CHECK(smm_file_store_get(store, "sha256:00", &list) == SMM_INVALID_INPUT && list == NULL, "a malformed id never reaches a path");
    CHECK(smm_file_store_get(store, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &list) == SMM_NOT_FOUND && list == NULL, "not found");
    CHECK(smm_file_store_list_json(store, "ws-icblabs-0001", "2025-09-01T00:00:00Z", NULL, &list) == SMM_OK && list && strstr(list, id), "list");
    /* The same folder through the generic store: the head of the chain, the
     * workspaces, and one page at a time (a cursor to pass back). */
    smm_store *any = NULL;
    char *page = NULL, *head = NULL, *names = NULL;
    CHECK(smm_store_open(dir, trusted, &any) == SMM_OK, "open the folder as a store");
    CHECK(smm_store_head(any, "ws-icblabs-0001", &head) == SMM_OK && head && strstr(head, "key/demo"), "the head, with both signatures");
    CHECK(smm_store_workspaces_json(any, &names) == SMM_OK && names && strcmp(names, "[\"ws-icblabs-0001\"]") == 0, "workspaces");
    CHECK(smm_store_list_page_json(any, "ws-icblabs-0001", NULL, 1, &page) == SMM_OK && page && strstr(page, id) && strstr(page, "\"next\":null"), "one page, the last");
    smm_string_free(page);
    page = NULL;
    CHECK(smm_store_list_page_json(any, "ws-icblabs-0001", NULL, 0, &page) == SMM_INVALID_INPUT && page == NULL, "a page of no bundle is refused");
    CHECK(smm_store_list_page_json(any, "ws-icblabs-0001", "sha256:00", 5, &page) == SMM_INVALID_INPUT && page == NULL, "a malformed cursor is refused");
    char *why = smm_last_error_json();
    CHECK(why && strstr(why, "\"pointer\":\"/after\""), "the refusal names the cursor");
    smm_string_free(why);
    smm_string_free(head);
    smm_string_free(names);
    smm_store_free(any);
    /* A FIFO planted as the bundle's locator is refused on its open handle
     * (its open used to wait for a writer forever). */
    char locator[256];
    snprintf(locator, sizeof locator, "%s/audit-snapshots/%s/bundle.json.gz", dir, id ? id + 7 : "");
    CHECK(unlink(locator) == 0 && mkfifo(locator, 0600) == 0, "plant a FIFO at %s", locator);
    smm_string_free(got);
    got = NULL;
    st = smm_file_store_get(store, id, &got);
    CHECK(st == SMM_CORRUPT_BUNDLE && got == NULL, "a planted FIFO is refused: %s", smm_status_name(st));
    why = smm_last_error_message();
    CHECK(why && strstr(why, "not a regular file"), "the refusal says why: %s", why ? why : "");
    smm_string_free(why);
    unlink(locator);
    /* So is a FIFO planted as the bundle's lock file: a writer's open of it
     * used to wait for a reader forever. */
    char lock[256];
    snprintf(lock, sizeof lock, "%s/locks/%s.lock", dir, id ? id + 7 : "");
    CHECK(unlink(lock) == 0 && mkfifo(lock, 0600) == 0, "plant a FIFO at %s", lock);
    smm_string_free(id2);
    id2 = NULL;
    st = smm_file_store_put(store, envelope, &id2);
    CHECK(st == SMM_CORRUPT_BUNDLE && id2 == NULL, "a FIFO as a lock file is refused: %s", smm_status_name(st));
    why = smm_last_error_message();
    CHECK(why && strstr(why, "not a regular file"), "the refusal says why: %s", why ? why : "");
    smm_string_free(why);
    unlink(lock);
    printf("stored %s under %s\n", id ? id : "", dir);

    smm_string_free(list);
    smm_string_free(got);
    smm_string_free(id);
    smm_string_free(id2);
    smm_file_store_free(store);
    smm_string_free(env2);
    smm_string_free(pem);
    free(trusted);
    free(trusted2);
    smm_signer_free(kms);
    smm_signer_free(broken);
    smm_string_free(envelope);
    smm_signer_free(local);
    smm_string_free(bundle);
    smm_string_free(report);
    free(inputs);
    free(contract);
    free(request);
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    printf("C audit example: all checks passed\n");
    return 0;
}
