import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('defaults to the embedded database and object store', () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBeUndefined();
    expect(c.s3).toBeUndefined();
    expect(c.inProcessWorker).toBe(true);
    expect(c.port).toBe(4000);
  });

  it('reads external services from the environment', () => {
    const c = loadConfig({ DATABASE_URL: 'postgresql://u@db/x', S3_ENDPOINT: 'https://minio.example:9443', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b', S3_BUCKET: 'bk' });
    expect(c.s3).toEqual({ endPoint: 'minio.example', port: 9443, useSSL: true, accessKey: 'a', secretKey: 'b', region: 'us-east-1', bucket: 'bk' });
    expect(c.inProcessWorker).toBe(false);
  });

  it('refuses bad values with a clear message', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(ConfigError);
    expect(() => loadConfig({ S3_ENDPOINT: 'http://minio:9000' })).toThrow(/S3_ACCESS_KEY/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });
});
