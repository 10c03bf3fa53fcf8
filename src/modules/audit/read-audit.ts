// Reads of case content (image URLs, case views, reports, timelines) are audit events like
// writes. A request may read many at once (a page of evidence with their URLs): the events of one
// tick are appended together in one transaction, and the read is answered only once they are
// written, so no URL is ever handed out without its record.
import DataLoader from 'dataloader';
import type { SqlDatabase } from '../../db/sql.js';
import type { Principal } from '../auth/roles.js';
import type { AuditInput, AuditService } from './audit.service.js';

export class ReadAudit {
  private readonly batcher: DataLoader<AuditInput, true>;

  constructor(audit: AuditService, sql: SqlDatabase, actor: Principal) {
    this.batcher = new DataLoader<AuditInput, true>(
      async (events) => {
        await sql.transaction((tx) => audit.appendAll(tx, actor, events));
        return events.map(() => true as const);
      },
      { cache: false, maxBatchSize: 500 },
    );
  }

  async record(event: AuditInput): Promise<void> {
    await this.batcher.load(event);
  }
}
