package dev.flagsync.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.openfeature.contrib.providers.flagd.Config;
import dev.openfeature.contrib.providers.flagd.FlagdOptions;
import dev.openfeature.contrib.providers.flagd.FlagdProvider;
import dev.openfeature.sdk.Client;
import dev.openfeature.sdk.EvaluationContext;
import dev.openfeature.sdk.FlagEvaluationDetails;
import dev.openfeature.sdk.ImmutableContext;
import dev.openfeature.sdk.MutableStructure;
import dev.openfeature.sdk.OpenFeatureAPI;
import dev.openfeature.sdk.Structure;
import dev.openfeature.sdk.Value;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Conformance client: OpenFeature's flagd provider for Java in the in-process resolver mode,
 * connected to a flagd sync service (flagd.sync.v1.FlagSyncService) such as flagsync's. Same
 * contract as the Node client (conformance/clients/README.md):
 *
 * <pre>
 * java -jar target/flagd-client.jar --host H --port P [--selector S] [--timeout-ms N]
 *      --cases FILE [--watch '{"flag":…,"type":…,"default":…,"context":{…}}']
 * </pre>
 *
 * <p>{@code --flags-file PATH} reads a flag file instead (the provider's FILE resolver): a way to
 * see flagd's answer on a document without a daemon, when looking into a difference.
 *
 * <p>Exit codes: 0 done, 1 no connection or no change before the timeout, 2 usage or bad input.
 */
public final class FlagdClient {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Set<String> TYPES = Set.of("boolean", "string", "integer", "float", "object");
  private static final PrintStream OUT =
      new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);

  /** A usage or input error: exit 2 with the message. */
  private static final class UsageError extends Exception {
    UsageError(String message) {
      super(message);
    }
  }

  private String host = "127.0.0.1";
  private int port = 8015;
  private String selector = "";
  private int timeoutMs = 30000;
  private String casesPath = "";
  private String flagsFile = "";
  private JsonNode watchCase;

  public static void main(String[] args) {
    // The provider logs through SLF4J; warnings (e.g. a rule it cannot parse) go to stderr.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
    int code;
    try {
      code = new FlagdClient().run(args);
    } catch (UsageError e) {
      System.err.println("java client: " + e.getMessage());
      code = 2;
    } catch (Exception e) {
      System.err.println("java client: " + e);
      e.printStackTrace();
      code = 1;
    }
    OUT.flush();
    // The gRPC channel keeps non-daemon threads: leave without waiting for them.
    Runtime.getRuntime().halt(code);
  }

  private int run(String[] args) throws Exception {
    parseArgs(args);
    List<JsonNode> cases = casesPath.isEmpty() ? List.of() : readCases(Path.of(casesPath));
    FlagdOptions.FlagdOptionsBuilder options =
        FlagdOptions.builder()
            .resolverType(Config.Resolver.IN_PROCESS)
            .host(host)
            .port(port)
            .deadline(timeoutMs)
            .retryGracePeriod(1);
    if (!selector.isEmpty()) {
      options.selector(selector);
    }
    if (!flagsFile.isEmpty()) {
      options.resolverType(Config.Resolver.FILE).offlineFlagSourcePath(flagsFile);
    }
    FlagdProvider provider = new FlagdProvider(options.build());
    OpenFeatureAPI api = OpenFeatureAPI.getInstance();
    String target =
        flagsFile.isEmpty() ? host + ":" + port + (selector.isEmpty() ? "" : " (selector " + selector + ")") : flagsFile;
    try {
      api.setProviderAndWait(provider);
    } catch (Exception e) {
      System.err.println("java client: cannot connect to flagd sync at " + target + ": " + e.getMessage());
      return 1;
    }
    Client client = api.getClient();
    for (JsonNode c : cases) {
      OUT.println(JSON.writeValueAsString(evaluate(client, c)));
    }
    boolean ok = watchCase == null || watch(client, watchCase);
    api.shutdown();
    return ok ? 0 : 1;
  }

  private void parseArgs(String[] args) throws UsageError {
    for (int i = 0; i < args.length; i += 2) {
      String name = args[i];
      if (i + 1 >= args.length) {
        throw new UsageError(name + " needs a value");
      }
      String value = args[i + 1];
      switch (name) {
        case "--host" -> host = value;
        case "--port" -> port = positiveInt(name, value, 65535);
        case "--selector" -> selector = value;
        case "--timeout-ms" -> timeoutMs = positiveInt(name, value, Integer.MAX_VALUE);
        case "--cases" -> casesPath = value;
        case "--flags-file" -> flagsFile = value;
        case "--watch" -> watchCase = checkCase(parse(value, "--watch"), "--watch");
        default -> throw new UsageError("unknown argument " + name);
      }
    }
    if (casesPath.isEmpty() && watchCase == null) {
      throw new UsageError("give --cases FILE, --watch CASE or both");
    }
  }

  private static int positiveInt(String name, String value, int max) throws UsageError {
    try {
      int n = Integer.parseInt(value);
      if (n > 0 && n <= max) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new UsageError(name + " " + value + ": not a positive integer up to " + max);
  }

  private static JsonNode parse(String text, String where) throws UsageError {
    try {
      return JSON.readTree(text);
    } catch (IOException e) {
      throw new UsageError(where + ": " + e.getMessage());
    }
  }

  /** Rejects a case this client cannot ask: the input is the test's own, so it is a caller bug. */
  private static JsonNode checkCase(JsonNode c, String where) throws UsageError {
    if (c == null || !c.isObject()) {
      throw new UsageError(where + ": not a JSON object");
    }
    if (!c.path("flag").isTextual()) {
      throw new UsageError(where + ": \"flag\" must be a string");
    }
    if (!TYPES.contains(c.path("type").asText(""))) {
      throw new UsageError(where + ": \"type\" must be one of " + String.join(" ", TYPES));
    }
    if (!c.has("default")) {
      throw new UsageError(where + ": \"default\" is missing");
    }
    JsonNode ctx = c.path("context");
    if (!ctx.isMissingNode() && !ctx.isNull() && !ctx.isObject()) {
      throw new UsageError(where + ": \"context\" must be an object");
    }
    return c;
  }

  private static List<JsonNode> readCases(Path path) throws UsageError {
    List<String> lines;
    try {
      lines = Files.readAllLines(path, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UsageError(path + ": cannot read: " + e.getMessage());
    }
    List<JsonNode> cases = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).isBlank()) {
        continue;
      }
      String where = path + ":" + (i + 1);
      cases.add(checkCase(parse(lines.get(i), where), where));
    }
    return cases;
  }

  /**
   * Asks the OpenFeature client the way a Java application would: integer cases through
   * getIntegerDetails (Java int), float through getDoubleDetails, object through getObjectDetails.
   */
  private static Map<String, Object> evaluate(Client client, JsonNode c) {
    String flag = c.get("flag").asText();
    JsonNode dflt = c.get("default");
    EvaluationContext ctx = context(c.path("context"));
    FlagEvaluationDetails<?> d;
    Object value;
    switch (c.get("type").asText()) {
      case "boolean" -> {
        d = client.getBooleanDetails(flag, dflt.asBoolean(), ctx);
        value = d.getValue();
      }
      case "string" -> {
        d = client.getStringDetails(flag, dflt.asText(), ctx);
        value = d.getValue();
      }
      case "integer" -> {
        d = client.getIntegerDetails(flag, dflt.asInt(), ctx);
        value = d.getValue();
      }
      case "float" -> {
        d = client.getDoubleDetails(flag, dflt.asDouble(), ctx);
        value = d.getValue();
      }
      default -> {
        FlagEvaluationDetails<Value> v = client.getObjectDetails(flag, toValue(dflt), ctx);
        d = v;
        value = fromValue(v.getValue());
      }
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("flag", flag);
    out.put("value", value);
    out.put("variant", d.getVariant());
    out.put("reason", d.getReason());
    out.put("errorCode", d.getErrorCode() == null ? null : d.getErrorCode().name());
    out.put("errorMessage", d.getErrorMessage());
    return out;
  }

  /** The case's context; a string targetingKey becomes the context's targeting key. */
  private static EvaluationContext context(JsonNode ctx) {
    Map<String, Value> attrs = new LinkedHashMap<>();
    String targetingKey = null;
    if (ctx.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = ctx.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (e.getKey().equals("targetingKey") && e.getValue().isTextual()) {
          targetingKey = e.getValue().asText();
        } else {
          attrs.put(e.getKey(), toValue(e.getValue()));
        }
      }
    }
    return new ImmutableContext(targetingKey, attrs);
  }

  /**
   * JSON to an OpenFeature Value the way Jackson reads numbers: int range → Integer, long range
   * → Long, anything else → Double.
   */
  private static Value toValue(JsonNode n) {
    if (n == null || n.isNull() || n.isMissingNode()) {
      return new Value();
    }
    if (n.isBoolean()) {
      return new Value(n.asBoolean());
    }
    if (n.isTextual()) {
      return new Value(n.asText());
    }
    if (n.isInt()) {
      return new Value(n.intValue());
    }
    if (n.isLong()) {
      return new Value(n.longValue());
    }
    if (n.isNumber()) {
      return new Value(n.doubleValue());
    }
    if (n.isArray()) {
      List<Value> list = new ArrayList<>();
      n.forEach(e -> list.add(toValue(e)));
      return new Value(list);
    }
    MutableStructure s = new MutableStructure();
    ObjectNode o = (ObjectNode) n;
    o.fields().forEachRemaining(e -> s.add(e.getKey(), toValue(e.getValue())));
    return new Value(s);
  }

  private static Object fromValue(Value v) {
    if (v == null || v.isNull()) {
      return null;
    }
    if (v.isStructure()) {
      Structure s = v.asStructure();
      Map<String, Object> m = new LinkedHashMap<>();
      for (String k : s.keySet()) {
        m.put(k, fromValue(s.getValue(k)));
      }
      return m;
    }
    if (v.isList()) {
      List<Object> l = new ArrayList<>();
      v.asList().forEach(e -> l.add(fromValue(e)));
      return l;
    }
    if (v.isInstant()) {
      return v.asInstant().toString();
    }
    return v.asObject();
  }

  /**
   * Polls the in-process evaluation (no network round trip: it reads the provider's copy of the
   * flags) until its value differs from the first one.
   */
  private boolean watch(Client client, JsonNode c) throws Exception {
    Map<String, Object> first = evaluate(client, c);
    OUT.println(JSON.writeValueAsString(watchLine("initial", first, -1)));
    long start = System.nanoTime();
    long limit = timeoutMs * 1_000_000L;
    while (System.nanoTime() - start < limit) {
      Thread.sleep(50);
      Map<String, Object> now = evaluate(client, c);
      if (!Objects.equals(now.get("value"), first.get("value"))) {
        long afterMs = (System.nanoTime() - start) / 1_000_000L;
        OUT.println(JSON.writeValueAsString(watchLine("changed", now, afterMs)));
        return true;
      }
    }
    System.err.println("java client: " + c.get("flag").asText() + " did not change within " + timeoutMs + " ms");
    return false;
  }

  private static Map<String, Object> watchLine(String event, Map<String, Object> result, long afterMs) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("watch", event);
    out.put("value", result.get("value"));
    out.put("variant", result.get("variant"));
    if (afterMs >= 0) {
      out.put("afterMs", afterMs);
    }
    return out;
  }
}
