package standin;

import java.util.Map;

/** Where the test API's records live: the embedded .db/ store (single node) or the MySQL application database. */
interface Store {
    /** Creates a record (or returns the existing one for a repeated uid); returns only after the write is durable. */
    Map<String, Object> createRecord(String uid, String payload) throws Exception;

    /** {"count": all records, "records": up to limit records with id > afterId}. */
    Map<String, Object> listRecords(long afterId, int limit) throws Exception;

    /** One run of the periodic scheduler job. */
    void schedulerRun(String node) throws Exception;

    /** Status of the store for /availability. */
    Map<String, Object> health();
}
