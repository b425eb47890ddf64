package standin;

import java.util.Map;

/** Where the test API's records live: the embedded .db/ store (single node) or the MySQL application database. */
interface Store {
    /** Creates a record (or returns the existing one for a repeated uid); returns only after the write is durable. */
    Map<String, Object> createRecord(String uid, String payload) throws Exception;

    /** {"count": all records, "records": up to limit records with id > afterId}. */
    Map<String, Object> listRecords(long afterId, int limit) throws Exception;

    /**
     * The session of a client: counts its request (a write) and reads the count back. Every HTTP
     * request but /alive and /availability goes through here first, as every Looker request reads and
     * writes the application database; when this fails, the request fails.
     */
    long touchSession(String client, String node) throws Exception;

    /** One run of the periodic scheduler job. */
    void schedulerRun(String node) throws Exception;

    /** Status of the store for /availability and /standin/state. */
    Map<String, Object> health();
}
