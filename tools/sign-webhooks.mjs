// Signs webhook deliveries the way real senders do, with each sender's own library, for the test suite
// (Tests/Ingress/SenderLibraryTests.cs). Reads a JSON array of {scheme, secret, body, id} on stdin and prints a
// JSON array of the headers each delivery carries, in the same order. Each set of headers is checked with the same
// library's own verifier before it is printed, so a header name or format the library would not accept fails here.
//   svix               svix-id/-timestamp/-signature from svix's Webhook.sign (what Svix sends)
//   standard-webhooks  webhook-id/-timestamp/-signature from standardwebhooks' Webhook.sign
//   github             X-Hub-Signature-256 from @octokit/webhooks-methods' sign, with X-GitHub-Delivery
//   stripe             Stripe-Signature from stripe's webhooks.generateTestHeaderString (the event id is the body's)
//   shopify            X-Shopify-Hmac-Sha256 from @shopify/shopify-api's own HMAC (the library only verifies webhooks,
//                      so its validator confirms the header), with X-Shopify-Webhook-Id; header names from ShopifyHeader
import { Webhook as SvixWebhook } from 'svix';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { sign as signGitHub, verify as verifyGitHub } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import '@shopify/shopify-api/adapters/node';
import { shopifyApi, ApiVersion, ShopifyHeader } from '@shopify/shopify-api';
import { createSHA256HMAC, HashFormat } from '@shopify/shopify-api/runtime';

async function sign({ scheme, secret, body, id }) {
  switch (scheme) {
    case 'svix': {
      const webhook = new SvixWebhook(secret);
      const now = new Date();
      const headers = {
        'svix-id': id,
        'svix-timestamp': String(Math.floor(now.getTime() / 1000)),
        'svix-signature': webhook.sign(id, now, body),
      };
      webhook.verify(body, headers);
      return headers;
    }
    case 'standard-webhooks': {
      const webhook = new StandardWebhook(secret);
      const now = new Date();
      const headers = {
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': webhook.sign(id, now, body),
      };
      webhook.verify(body, headers);
      return headers;
    }
    case 'github': {
      const signature = await signGitHub(secret, body);
      if (!(await verifyGitHub(secret, body, signature))) {
        throw new Error('@octokit/webhooks-methods does not verify its own signature');
      }
      return { 'X-Hub-Signature-256': signature, 'X-GitHub-Delivery': id };
    }
    case 'stripe': {
      const header = Stripe.webhooks.generateTestHeaderString({ payload: body, secret });
      Stripe.webhooks.constructEvent(body, header, secret);
      return { 'Stripe-Signature': header };
    }
    case 'shopify': {
      const hmac = await createSHA256HMAC(secret, body, HashFormat.Base64);
      const headers = {
        [ShopifyHeader.Hmac]: hmac,
        [ShopifyHeader.WebhookId]: id,
        [ShopifyHeader.Topic]: 'orders/create',
        [ShopifyHeader.Domain]: 'test-shop.myshopify.com',
        [ShopifyHeader.ApiVersion]: ApiVersion.January26,
      };
      const shopify = shopifyApi({
        apiKey: 'test-key', apiSecretKey: secret, scopes: [], hostName: 'localhost',
        apiVersion: ApiVersion.January26, isEmbeddedApp: false, logger: { level: 0 },
      });
      const rawRequest = {
        method: 'POST', url: '/',
        headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])),
      };
      const check = await shopify.webhooks.validate({ rawBody: body, rawRequest, rawResponse: {} });
      if (!check.valid) {
        throw new Error(`@shopify/shopify-api does not accept the headers: ${check.reason}`);
      }
      return headers;
    }
    default:
      throw new Error(`unknown scheme ${scheme}`);
  }
}

process.stdin.setEncoding('utf8');
let input = '';
for await (const chunk of process.stdin) {
  input += chunk;
}

const deliveries = JSON.parse(input);
const signed = [];
for (const delivery of deliveries) {
  signed.push(await sign(delivery));
}
process.stdout.write(JSON.stringify(signed));
