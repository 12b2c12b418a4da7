/* Cost controls through the C ABI: a SQLite usage ledger shared by four
 * threads never passes a limit (1,000 reservations of 10 tokens against
 * 5,000: exactly 500 pass), a strict reservation over quota is
 * SMM_QUOTA_EXCEEDED, commits are idempotent, a model call is priced
 * exactly, an agent token is checked, and the budget-breach playbook halts
 * the workspace.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -I smm-ffi/include examples/c/usage.c \
 *          target/debug/libsmm.a -lm -lpthread -ldl
 * Run from the repository root. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "smm.h"
#include "example_util.h"

#define NOW "2025-09-01T12:00:00Z"

struct worker {
    const smm_ledger *ledger;
    int tag;
    int allowed;
    smm_status status;
};

static void *reserve_many(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < 250; i++) {
        char job[64];
        snprintf(job, sizeof job, "job-%d-%d", w->tag, i);
        char *r = NULL;
        w->status = smm_ledger_reserve(w->ledger, "ws-1", job, "{\"tokens\":10}", NOW, 0, false, &r);
        if (w->status != SMM_OK) return NULL;
        if (!strstr(r, "\"outcome\":\"block\"")) {
            w->allowed++;
            /* The id is the first field: {"id":"res-N",... */
            char id[64] = {0};
            const char *at = strstr(r, "\"id\":\"");
            if (at) sscanf(at + 6, "%63[^\"]", id);
            char *receipt = NULL;
            w->status = smm_ledger_commit(w->ledger, id, "{\"tokens\":10}", NOW, &receipt);
            smm_string_free(receipt);
            if (w->status != SMM_OK) { smm_string_free(r); return NULL; }
        }
        smm_string_free(r);
    }
    return NULL;
}

static void print_error(void) {
    char *m = smm_last_error_message();
    fprintf(stderr, "  error: %s\n", m ? m : "(none)");
    smm_string_free(m);
}

int main(void) {
    char *contract = read_file("examples/workspace.icblabs.v2.json");
    char *prices = read_file("examples/prices.example.json");
    if (!contract || !prices) { fprintf(stderr, "run from the repository root\n"); return 2; }

    char path[] = "/tmp/smm-usage-example-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    close(fd);
    unlink(path); /* the ledger creates its own file */

    smm_ledger *ledger = NULL;
    CHECK(smm_ledger_open(path, &ledger) == SMM_OK && ledger, "open the SQLite ledger");
    CHECK(smm_ledger_set_quota(ledger, "{\"workspaceId\":\"ws-1\",\"kind\":\"tokens\",\"period\":\"day\",\"limit\":5000}") == SMM_OK, "set quota");
    char *known = NULL;
    CHECK(smm_ledger_workspaces_json(ledger, &known) == SMM_OK && known && strcmp(known, "[\"ws-1\"]") == 0,
          "the ledger knows its workspace");
    smm_string_free(known);

    /* Four threads, one handle: exactly 500 of 1,000 reservations pass. */
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ledger, i, 0, SMM_OK};
        pthread_create(&t[i], NULL, reserve_many, &w[i]);
    }
    int allowed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].status == SMM_OK, "thread %d: %s", i, smm_status_name(w[i].status));
        allowed += w[i].allowed;
    }
    uint64_t used = 0;
    CHECK(smm_ledger_used(ledger, "ws-1", "tokens", "day", NOW, &used) == SMM_OK, "used");
    CHECK(allowed == 500 && used == 5000, "exactly 500 pass (%d), 5000 used (%llu)", allowed, (unsigned long long)used);
    printf("threads: %d of 1000 reservations allowed, %llu tokens committed\n", allowed, (unsigned long long)used);

    /* Strict: a block is an error with the reasons. */
    char *r = NULL;
    smm_status st = smm_ledger_reserve(ledger, "ws-1", "job-over", "{\"tokens\":1}", NOW, 0, true, &r);
    char *m = smm_last_error_message();
    CHECK(st == SMM_QUOTA_EXCEEDED && r == NULL && m && strstr(m, "> limit 5000"), "strict block: %s", m ? m : "");
    smm_string_free(m);
    /* Not strict: the answer says block, nothing is held. */
    CHECK(smm_ledger_reserve(ledger, "ws-1", "job-over", "{\"tokens\":1}", NOW, 0, false, &r) == SMM_OK && r && strstr(r, "\"outcome\":\"block\""), "block outcome");
    smm_string_free(r);
    r = NULL;
    /* Bad amounts name the field; unknown reservations are their own status. */
    st = smm_ledger_reserve(ledger, "ws-1", "job-bad", "{\"tokens\":-1}", NOW, 0, false, &r);
    m = smm_last_error_message();
    CHECK(st == SMM_INVALID_INPUT && m && strstr(m, "amounts_json/tokens"), "negative tokens: %s", m ? m : "");
    smm_string_free(m);
    CHECK(smm_ledger_release(ledger, "res-999999") == SMM_UNKNOWN_RESERVATION, "unknown reservation");
    CHECK(smm_ledger_release(NULL, "res-1") == SMM_NULL_ARGUMENT, "NULL ledger");
    uint64_t n = 0;
    CHECK(smm_ledger_used(ledger, "ws-1", "tokens", "week", NOW, &n) == SMM_INVALID_INPUT, "bad period");

    /* Price a model call exactly. */
    char *usage = NULL;
    CHECK(smm_price_usage(prices, "gpt-4", "[{\"role\":\"user\",\"content\":\"Plan the launch\"}]", 100, 200, NOW, &usage) == SMM_OK
              && usage && strstr(usage, "\"costUsd\":\"0.015\""), "priced: %s", usage ? usage : "");
    printf("model usage: %s\n", usage ? usage : "");
    smm_string_free(usage);

    /* Agent tokens. */
    const char *claims = "{\"policies\":[\"agent-research-ws-1\"],\"issuedAt\":\"2025-09-01T11:00:00Z\",\"expiresAt\":\"2025-09-01T13:00:00Z\"}";
    CHECK(smm_check_agent_token(claims, "ws-1", "research", NOW) == SMM_OK, "token ok");
    CHECK(smm_check_agent_token(claims, "ws-2", "research", NOW) == SMM_TOKEN_REJECTED, "another workspace");
    CHECK(smm_check_agent_token(claims, "ws-1", "research", "2025-09-01T13:00:00Z") == SMM_TOKEN_REJECTED, "expired");

    /* The contract's hard cap as a quota, and its retention plan. */
    char *quotas = NULL;
    CHECK(smm_contract_quotas(contract, &quotas) == SMM_OK && quotas && strstr(quotas, "\"limit\":5000000000000"), "hard cap quota: %s", quotas ? quotas : "");
    smm_string_free(quotas);
    char *plan = NULL;
    CHECK(smm_retention_plan(contract, "[{\"id\":\"run-1\",\"kind\":\"agent_run\",\"createdAt\":\"2024-08-01T00:00:00Z\"}]",
                             "2025-10-01T00:00:00Z", false, &plan) == SMM_OK && plan && strstr(plan, "\"action\":\"delete\""), "retention plan");
    uint64_t deleted = 99;
    CHECK(smm_ledger_apply_retention(ledger, plan, &deleted) == SMM_OK && deleted == 0, "another workspace's plan deletes nothing here");
    smm_string_free(plan);

    /* The same file at full durability: each commit on the disk before it returns. */
    smm_ledger *durable = NULL;
    CHECK(smm_ledger_open_durable(path, "full", &durable) == SMM_OK && durable, "open at full durability");
    char *how = NULL;
    CHECK(smm_ledger_durability(durable, &how) == SMM_OK && how && strcmp(how, "full") == 0, "durability is full");
    smm_string_free(how);
    uint64_t seen = 0;
    CHECK(smm_ledger_used(durable, "ws-1", "tokens", "day", NOW, &seen) == SMM_OK && seen == used,
          "the durable handle reads the same books (%llu)", (unsigned long long)seen);
    smm_ledger_free(durable);
    smm_ledger *bad = NULL;
    CHECK(smm_ledger_open_durable(path, "fsync", &bad) == SMM_INVALID_INPUT && bad == NULL,
          "an unknown durability is refused");

    if (failures) print_error();
    smm_ledger_free(ledger);
    unlink(path);
    char side[sizeof path + 8];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    free(contract);
    free(prices);
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    printf("usage example: all checks passed\n");
    return 0;
}
