import { entities as subscriptionEntities } from './model';
import { rewardEntities } from './reward';
import { SentMail } from './sent-mail';
import { userEntities } from './user';

/** Everything the example's DataSource lists in `entities`. */
export const allEntities = [...userEntities, ...rewardEntities, ...subscriptionEntities, SentMail];
