package io.vlproxy.testenv;

import java.util.List;
import java.util.Map;

import org.opensearch.action.ActionRequest;
import org.opensearch.action.admin.indices.create.CreateIndexRequest;
import org.opensearch.action.admin.indices.mapping.put.PutMappingRequest;
import org.opensearch.action.admin.indices.template.put.PutComposableIndexTemplateAction;
import org.opensearch.action.admin.indices.template.put.PutIndexTemplateRequest;
import org.opensearch.action.support.ActionFilter;
import org.opensearch.action.support.ActionFilterChain;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.action.ActionResponse;
import org.opensearch.plugins.ActionPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.tasks.Task;

/**
 * Rejects k-NN mappings that would need the FAISS or NMSLIB native libraries, which the k-NN zip
 * on Maven Central does not contain.
 *
 * <p>Without this, such a mapping is accepted and the first document indexed into it kills a
 * write thread with UnsatisfiedLinkError (the launcher then halts the node). A 400 at mapping
 * time, naming the field, keeps a node shared by many tests alive and says what to change.
 *
 * <p>Checked: create index, put mapping, legacy and composable index templates. A knn_vector
 * field passes when its method says {@code "engine": "lucene"}; it is refused when it names
 * another engine, uses a trained model ({@code model_id}), or sets {@code mode} or
 * {@code compression_level} without a Lucene method (those select FAISS). A field with no method
 * is refused only when the request itself creates an index with {@code index.knn: true} (then
 * the default engine, FAISS, would build graphs); with {@code index.knn} false it is a flat field
 * needing no natives.
 */
public final class KnnEngineGuardPlugin extends Plugin implements ActionPlugin {

    @Override
    public List<ActionFilter> getActionFilters() {
        return List.of(new Guard());
    }

    static final class Guard implements ActionFilter {
        @Override
        public int order() {
            return Integer.MIN_VALUE; // before anything else looks at the request
        }

        @Override
        public <Request extends ActionRequest, Response extends ActionResponse> void apply(
            Task task, String action, Request request, ActionListener<Response> listener, ActionFilterChain<Request, Response> chain) {
            String problem;
            try {
                problem = check(request);
            } catch (RuntimeException e) {
                problem = null; // unparsable mappings: let OpenSearch report its own error
            }
            if (problem != null) {
                listener.onFailure(new IllegalArgumentException(problem));
                return;
            }
            chain.proceed(task, action, request, listener);
        }
    }

    static String check(ActionRequest request) {
        if (request instanceof CreateIndexRequest) {
            CreateIndexRequest r = (CreateIndexRequest) request;
            boolean knnIndex = r.settings().getAsBoolean("index.knn", false);
            return checkMappings(r.mappings(), knnIndex);
        }
        if (request instanceof PutMappingRequest) {
            return checkMappings(((PutMappingRequest) request).source(), false);
        }
        if (request instanceof PutIndexTemplateRequest) {
            PutIndexTemplateRequest r = (PutIndexTemplateRequest) request;
            return checkMappings(r.mappings(), r.settings().getAsBoolean("index.knn", false));
        }
        if (request instanceof PutComposableIndexTemplateAction.Request) {
            var t = ((PutComposableIndexTemplateAction.Request) request).indexTemplate();
            if (t == null || t.template() == null || t.template().mappings() == null) {
                return null;
            }
            boolean knnIndex = t.template().settings() != null && t.template().settings().getAsBoolean("index.knn", false);
            return checkMappings(t.template().mappings().string(), knnIndex);
        }
        return null;
    }

    static String checkMappings(String json, boolean knnIndex) {
        if (json == null || json.isEmpty() || !json.contains("knn_vector")) {
            return null;
        }
        Map<String, Object> m = XContentHelper.convertToMap(JsonXContent.jsonXContent, json, false);
        return walk(m, "", knnIndex);
    }

    @SuppressWarnings("unchecked")
    private static String walk(Object node, String path, boolean knnIndex) {
        if (node instanceof Map) {
            Map<String, Object> m = (Map<String, Object>) node;
            if ("knn_vector".equals(m.get("type"))) {
                String p = fieldProblem(m, knnIndex);
                if (p != null) {
                    return "knn_vector field [" + path + "] " + p + ": this test node has the k-NN plugin from Maven "
                        + "Central, without the faiss and nmslib native libraries; map it with "
                        + "\"method\": {\"name\": \"hnsw\", \"engine\": \"lucene\", ...}";
                }
            }
            for (Map.Entry<String, Object> e : m.entrySet()) {
                String child = "properties".equals(e.getKey()) || "mappings".equals(e.getKey()) || "_doc".equals(e.getKey())
                    ? path
                    : (path.isEmpty() ? e.getKey() : path + "." + e.getKey());
                String p = walk(e.getValue(), child, knnIndex);
                if (p != null) {
                    return p;
                }
            }
        } else if (node instanceof List) {
            for (Object o : (List<Object>) node) {
                String p = walk(o, path, knnIndex);
                if (p != null) {
                    return p;
                }
            }
        }
        return null;
    }

    private static String fieldProblem(Map<String, Object> field, boolean knnIndex) {
        if (field.containsKey("model_id")) {
            return "uses a trained model (model_id)";
        }
        Object method = field.get("method");
        if (method instanceof Map) {
            Object engine = ((Map<?, ?>) method).get("engine");
            if (engine == null) {
                return "has a method without \"engine\" (the default engine is faiss)";
            }
            if (!"lucene".equals(engine)) {
                return "uses engine [" + engine + "]";
            }
            return null;
        }
        if (field.containsKey("mode") || field.containsKey("compression_level")) {
            return "sets mode/compression_level without a lucene method (that selects faiss)";
        }
        if (knnIndex) {
            return "has no method in an index with index.knn=true (the default engine is faiss)";
        }
        return null;
    }
}
