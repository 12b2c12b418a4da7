/* Policies through the C ABI: the default bundle evaluates the example
 * workspace's input from two threads at once (a bundle is thread-safe),
 * a broken input is refused with a JSON pointer, the decision becomes a
 * decision card, a decision of another bundle is refused, and a bundle
 * with a broken rule does not load.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -I smm-ffi/include examples/c/policy.c \
 *          target/debug/libsmm.a -lm -lpthread -ldl
 * Run from the repository root. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <unistd.h>

#include "smm.h"
#include "example_util.h"

struct job {
    const smm_policy_bundle *bundle;
    const char *input;
    char *decision;
    smm_status status;
};

static void *evaluate(void *arg) {
    struct job *j = arg;
    for (int i = 0; i < 50; i++) {
        char *d = NULL;
        j->status = smm_policy_evaluate_json(j->bundle, j->input, &d);
        if (j->status != SMM_OK) return NULL;
        if (i == 0) j->decision = d; else smm_string_free(d);
    }
    return NULL;
}

static void print_error(void) {
    char *m = smm_last_error_message();
    fprintf(stderr, "  error: %s\n", m ? m : "(none)");
    smm_string_free(m);
}

int main(void) {
    char *input = read_file("examples/policy-input.icblabs.json");
    char *contract = read_file("examples/workspace.icblabs.v2.json");
    if (!input || !contract) { fprintf(stderr, "run from the repository root\n"); return 2; }

    smm_policy_bundle *bundle = NULL;
    CHECK(smm_policy_bundle_default(&bundle) == SMM_OK, "default bundle");
    char *checksum = NULL;
    CHECK(smm_policy_bundle_checksum(bundle, &checksum) == SMM_OK && checksum && strlen(checksum) == 64, "checksum");
    CHECK(checksum && strstr(contract, checksum), "the example contract names the default bundle");

    /* One bundle, two threads, the same answer. */
    struct job a = {bundle, input, NULL, SMM_OK}, b = {bundle, input, NULL, SMM_OK};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, evaluate, &a);
    pthread_create(&tb, NULL, evaluate, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.status == SMM_OK && b.status == SMM_OK, "evaluate from two threads (status %d, %d)", (int)a.status, (int)b.status);
    CHECK(a.decision && b.decision && strcmp(a.decision, b.decision) == 0, "both threads agree");
    CHECK(a.decision && strstr(a.decision, "\"allow\":true"), "the example is allowed: %s", a.decision ? a.decision : "");
    printf("decision: %.160s...\n", a.decision ? a.decision : "");

    /* A prepared input: validated once, decided many times, the same answer. */
    smm_policy_input *prepared = NULL;
    CHECK(smm_policy_input_new_json(input, &prepared) == SMM_OK && prepared, "prepare the input");
    for (int i = 0; i < 3; i++) {
        char *again = NULL;
        CHECK(smm_policy_evaluate_input_json(bundle, prepared, &again) == SMM_OK && again && a.decision && strcmp(again, a.decision) == 0, "a prepared input decides as the document does");
        smm_string_free(again);
    }
    /* The default bundle's native form: the VM's decision (codes, bundle,
       evaluation id), made in microseconds, its engine "smm-native". */
    int has_native = -1;
    CHECK(smm_policy_bundle_has_native(bundle, &has_native) == SMM_OK && has_native == 1, "the default bundle has a native form");
    char *native = NULL;
    CHECK(smm_policy_evaluate_input_with_json(bundle, prepared, "native", &native) == SMM_OK && native
          && strstr(native, "\"engine\":\"smm-native\""), "a native decision: %s", native ? native : "");
    const char *vm_engine = a.decision ? strstr(a.decision, "\"engine\":") : NULL;
    const char *native_engine = native ? strstr(native, "\"engine\":") : NULL;
    CHECK(vm_engine && native_engine && vm_engine - a.decision == native_engine - native
          && strncmp(a.decision, native, (size_t)(vm_engine - a.decision)) == 0
          && strcmp(strstr(a.decision, "\"evaluationId\":"), strstr(native, "\"evaluationId\":")) == 0,
          "the native decision is the VM's: %s / %s", native ? native : "", a.decision ? a.decision : "");
    smm_string_free(native);
    char *vm_again = NULL;
    CHECK(smm_policy_evaluate_input_with_json(bundle, prepared, "vm", &vm_again) == SMM_OK && vm_again && a.decision
          && strcmp(vm_again, a.decision) == 0, "engine \"vm\" is smm_policy_evaluate_input_json");
    smm_string_free(vm_again);
    char *unknown = NULL;
    CHECK(smm_policy_evaluate_input_with_json(bundle, prepared, "wasm", &unknown) == SMM_INVALID_INPUT && unknown == NULL, "an unknown engine is refused");
    CHECK(smm_policy_bundle_has_native(bundle, NULL) == SMM_NULL_ARGUMENT, "has_native needs somewhere to write");
    smm_policy_input_free(prepared);
    smm_policy_input *none = NULL;
    CHECK(smm_policy_input_new_json("{\"timestamp\": 1}", &none) == SMM_INVALID_INPUT && none == NULL, "a bad input is not prepared");
    char *nothing = NULL;
    CHECK(smm_policy_evaluate_input_json(bundle, NULL, &nothing) != SMM_OK && nothing == NULL, "a NULL input is refused");

    /* A field of the wrong shape: SMM_INVALID_INPUT naming it. */
    char *bad = replaced(input, "\"type\": \"research\"", "\"type\": \"reserch\"");
    char *d = NULL;
    smm_status st = bad ? smm_policy_evaluate_json(bundle, bad, &d) : SMM_PANIC;
    char *m = smm_last_error_message();
    CHECK(st == SMM_INVALID_INPUT && d == NULL && m && strstr(m, "/workflow/0/type"), "bad step type refused: %s", m ? m : "");
    smm_string_free(m);
    /* The same error as JSON: code, name, category, message, pointer, hint. */
    char *ej = smm_last_error_json();
    CHECK(ej && strstr(ej, "\"code\":3") && strstr(ej, "\"name\":\"SMM_INVALID_INPUT\"")
          && strstr(ej, "\"category\":\"input\"") && strstr(ej, "\"pointer\":\"/workflow/0/type\"")
          && strstr(ej, "\"hint\":"), "error json: %s", ej ? ej : "");
    smm_string_free(ej);
    free(bad);

    /* Any rule, on any input. */
    char *q = NULL;
    CHECK(smm_policy_query_json(bundle, "data.smm.budget.workflow_cost", input, &q) == SMM_OK && q && strcmp(q, "400") == 0, "query");
    smm_string_free(q);
    q = NULL;
    CHECK(smm_policy_query_json(bundle, "data.smm.lib.now_ns", "{}", &q) == SMM_NOT_FOUND && q == NULL, "undefined rule");

    /* The Rego unit tests of the bundle. */
    char *tests = NULL;
    CHECK(smm_policy_test_json(bundle, &tests) == SMM_OK && tests && strstr(tests, "\"failed\":0") && strstr(tests, "\"coveragePercent\":100.0"), "rego tests pass with full coverage");
    smm_string_free(tests);

    /* The decision card. */
    char *report = NULL, *card = NULL;
    char *request = malloc(strlen(contract) + 128);
    if (!request) return 2;
    sprintf(request, "{\"workspaceContext\":%s,\"simulationConfig\":{\"iterations\":1000,\"randomSeed\":42}}", contract);
    CHECK(smm_simulate_json(request, 1, &report) == SMM_OK, "simulate");
    st = smm_decision_card_json(report, a.decision, contract, &card);
    if (st != SMM_OK) print_error();
    CHECK(st == SMM_OK && card && strstr(card, "\"action\":\"human_approval\""), "card: %.200s", card ? card : "");
    printf("card: %.160s...\n", card ? card : "");
    smm_string_free(card);
    card = NULL;

    /* A decision of another bundle is refused, naming both checksums. */
    smm_policy_bundle *other = NULL;
    const char *modules = "{\"smm/d.rego\": \"package smm\\nimport rego.v1\\n\\ndecision := {\\\"allow\\\": true, \\\"deny\\\": [], \\\"warnings\\\": [], \\\"reasons\\\": [], \\\"require_human_approval\\\": false}\\n\"}";
    st = smm_policy_bundle_from_modules_json(modules, NULL, &other);
    if (st != SMM_OK) print_error();
    CHECK(st == SMM_OK, "a bundle from modules");
    char *foreign = NULL;
    CHECK(smm_policy_evaluate_json(other, input, &foreign) == SMM_OK, "evaluate another bundle");
    /* Another policy has no native form: never the default's answer for it. */
    int other_native = -1;
    CHECK(smm_policy_bundle_has_native(other, &other_native) == SMM_OK && other_native == 0, "another bundle has no native form");
    smm_policy_input *other_input = NULL;
    CHECK(smm_policy_input_new_json(input, &other_input) == SMM_OK, "prepare the input again");
    char *no_native = NULL;
    st = smm_policy_evaluate_input_with_json(other, other_input, "native", &no_native);
    m = smm_last_error_message();
    CHECK(st == SMM_POLICY && no_native == NULL && m && strstr(m, "native"), "no native decision of another bundle: %s", m ? m : "");
    smm_string_free(m);
    smm_policy_input_free(other_input);
    st = smm_decision_card_json(report, foreign, contract, &card);
    m = smm_last_error_message();
    CHECK(st == SMM_POLICY_CHECKSUM && card == NULL && m && checksum && strstr(m, checksum), "foreign decision refused: %s", m ? m : "");
    smm_string_free(m);

    /* A rule that fails when run: the load fails, naming module and line. */
    smm_policy_bundle *broken = NULL;
    st = smm_policy_bundle_from_modules_json("{\"p/q.rego\": \"package q\\nimport rego.v1\\n\\nn := count(1)\\n\"}", NULL, &broken);
    m = smm_last_error_message();
    CHECK(st == SMM_POLICY && broken == NULL && m && strstr(m, "p/q.rego") && strstr(m, "line 4"), "broken rule: %s", m ? m : "");
    smm_string_free(m);
    CHECK(strcmp(smm_status_name(SMM_POLICY_CHECKSUM), "SMM_POLICY_CHECKSUM") == 0, "status name");

    /* Code from outside: a recursive function is refused before it runs
     * (it overflowed the stack), and this process goes on. */
    st = smm_policy_bundle_from_modules_json("{\"p.rego\": \"package p\\nimport rego.v1\\nf(x) := f(x)\\nr := f(1)\\n\"}", NULL, &broken);
    m = smm_last_error_message();
    CHECK(st == SMM_POLICY && broken == NULL && m && strstr(m, "recursive function"), "recursion: %s", m ? m : "");
    smm_string_free(m);

    /* Pinned: the shipped directory on the contract's pin loads; off it,
     * it is refused before any of its source is parsed. */
    smm_policy_bundle *pinned = NULL;
    st = smm_policy_bundle_from_dir_pinned("smm-core/policies/default", checksum, &pinned);
    if (st != SMM_OK) print_error();
    CHECK(st == SMM_OK && pinned, "pinned directory bundle");
    smm_policy_bundle_free(pinned);
    pinned = NULL;
    st = smm_policy_bundle_from_dir_pinned("smm-core/policies/default",
        "0000000000000000000000000000000000000000000000000000000000000000", &pinned);
    CHECK(st == SMM_POLICY_CHECKSUM && pinned == NULL, "off the pin: %s", smm_status_name(st));

    /* A link among a directory bundle's entries is refused, not followed
     * (here to a device that never ends). */
    char dir[] = "/tmp/smm-c-policy-XXXXXX", link[64];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(link, sizeof link, "%s/z.rego", dir);
    CHECK(symlink("/dev/zero", link) == 0, "symlink");
    smm_policy_bundle *linked = NULL;
    st = smm_policy_bundle_from_dir(dir, &linked);
    m = smm_last_error_message();
    CHECK(st == SMM_POLICY && linked == NULL && m && strstr(m, "symbolic link"), "a linked entry: %s", m ? m : "");
    smm_string_free(m);
    unlink(link);
    rmdir(dir);

    smm_string_free(foreign);
    smm_string_free(report);
    smm_string_free(checksum);
    smm_string_free(a.decision);
    smm_string_free(b.decision);
    smm_policy_bundle_free(other);
    smm_policy_bundle_free(bundle);
    free(request);
    free(input);
    free(contract);
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    printf("policy example: all checks passed\n");
    return 0;
}
